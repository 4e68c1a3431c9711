/**
 * TEST STAND-IN for the agent manager, which is not written yet. A real gRPC server (mesh
 * GrpcServer) implementing only EnqueueRun, idempotent by (task_id, attempt) as the contract
 * says, recording every call, and publishing RunStarted/RunCompleted envelopes on JetStream
 * with whatever outcome the test wants. Every other RPC answers UNIMPLEMENTED. To be replaced
 * by the real agent manager in the end-to-end tests.
 */
import { randomUUID } from "node:crypto";
import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { JetStreamClient } from "@nats-io/jetstream";
import { AgentManagerService } from "../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import {
  type EnqueueRunRequest,
  type Run,
  RunSchema,
  RunState,
} from "../../gen/codex/agentmanager/v1/run_pb.js";
import { RunCompletedSchema, RunStartedSchema } from "../../gen/codex/events/v1/agent_events_pb.js";
import { ActorType } from "../../gen/codex/events/v1/envelope_pb.js";
import { Code, ServiceError } from "../../mesh/errors.js";
import { encodeEnvelope, newEnvelope } from "../../mesh/events/envelope.js";
import { publish } from "../../mesh/nats/publisher.js";
import type { Subjects } from "../../mesh/nats/subjects.js";
import { StandInServer } from "../../test/support/stand-in.js";

export type Outcome = "SUCCEEDED" | "FAILED" | "CANCELLED" | "LOST";

/**
 * What the stand-in does with a run: finish it after `afterMs`, or hold it until told. With
 * `beforeReply` the run finishes (events published) before EnqueueRun answers, as a fast agent
 * manager may: the outcome then reaches the scheduler before it recorded the run.
 */
export type Behaviour = (
  req: EnqueueRunRequest,
) => { outcome: Outcome; afterMs?: number; error?: string; beforeReply?: boolean } | "hold";

export interface EnqueueCall {
  at: number;
  req: EnqueueRunRequest;
  run: Run;
}

export class AgentManagerStandIn extends StandInServer {
  readonly calls: EnqueueCall[] = [];
  /** Runs the scheduler asked to cancel (answered UNIMPLEMENTED). */
  readonly cancels: string[] = [];
  readonly completions: { runId: string; taskId: string; attempt: number; outcome: Outcome; at: number }[] =
    [];
  behaviour: Behaviour = () => ({ outcome: "SUCCEEDED", afterMs: 10 });
  /** Delay before EnqueueRun answers (to build a backlog in the scheduler's queue). */
  enqueueDelay: (req: EnqueueRunRequest) => number | Promise<void> = () => 0;
  readonly #runs = new Map<string, Run>();

  constructor(
    private readonly js: JetStreamClient,
    private readonly subjects: Subjects,
    secret: string,
  ) {
    super("agentmanager-stand-in", secret);
    this.add(AgentManagerService, {
      enqueueRun: (req) => this.#enqueue(req),
      cancelRun: async (req) => {
        this.cancels.push(req.runId);
        throw new ServiceError(Code.UNIMPLEMENTED, "CancelRun is not implemented by the stand-in");
      },
    });
  }

  /** Calls for one task, in order. */
  callsFor(taskId: string): EnqueueCall[] {
    return this.calls.filter((c) => c.req.taskId === taskId);
  }

  /** The runs held (behaviour "hold") and not completed yet. */
  held(): Run[] {
    const done = new Set(this.completions.map((c) => c.runId));
    return [...this.#runs.values()].filter((r) => !done.has(r.id));
  }

  async #enqueue(req: EnqueueRunRequest): Promise<{ run: Run }> {
    const key = `${req.taskId}:${req.attempt}`;
    const existing = this.#runs.get(key);
    const run =
      existing ??
      create(RunSchema, {
        id: randomUUID(),
        taskId: req.taskId,
        workItemId: req.workItemId,
        projectId: req.projectId,
        attempt: req.attempt,
        priority: req.priority,
        state: RunState.PENDING,
      });
    this.calls.push({ at: Date.now(), req, run });
    this.#runs.set(key, run);
    const delay = this.enqueueDelay(req);
    if (typeof delay !== "number") await delay;
    else if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (existing) return { run };
    const b = this.behaviour(req);
    if (b !== "hold" && b.beforeReply) {
      await this.complete(run, b.outcome, b.error ?? "");
      await new Promise((r) => setTimeout(r, 300));
    } else if (b !== "hold") {
      setTimeout(() => {
        this.complete(run, b.outcome, b.error ?? "").catch(() => {});
      }, b.afterMs ?? 0);
    }
    return { run };
  }

  /** Publishes RunStarted then RunCompleted for a run, as the real agent manager will. */
  async complete(run: Run, outcome: Outcome, error = ""): Promise<void> {
    await this.#publish(RunStartedSchema, "RunStarted", run, {
      runId: run.id,
      taskId: run.taskId,
      workItemId: run.workItemId,
      agentId: "agent-stand-in",
      attempt: run.attempt,
    });
    run.state = RunState[outcome];
    run.error = error;
    this.completions.push({
      runId: run.id,
      taskId: run.taskId,
      attempt: run.attempt,
      outcome,
      at: Date.now(),
    });
    await this.#publish(RunCompletedSchema, "RunCompleted", run, {
      runId: run.id,
      workItemId: run.workItemId,
      taskId: run.taskId,
      attempt: run.attempt,
      status: RunState[outcome],
      agentId: "agent-stand-in",
      timestamp: timestampNow(),
      error,
      ...(outcome === "SUCCEEDED" ? { exitCode: 0 } : outcome === "FAILED" ? { exitCode: 1 } : {}),
    });
  }

  async #publish<D extends DescMessage>(
    schema: D,
    name: string,
    run: Run,
    payload: Omit<MessageShape<D>, "$typeName">,
  ) {
    const envelope = newEnvelope({
      schema,
      payload: create(schema, payload as never),
      aggregateType: "run",
      aggregateId: run.id,
      projectId: run.projectId,
      actor: { type: ActorType.SERVICE, id: "agentmanager" },
      source: "agentmanager",
    });
    await publish(this.js, this.subjects.event("run", name), encodeEnvelope(envelope), {
      msgId: envelope.id,
    });
  }
}
