import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { RunState } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { RunCompletedSchema, RunStartedSchema } from "../../../gen/codex/events/v1/agent_events_pb.js";
import { ActorType, type EventEnvelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import {
  ApprovalGrantedSchema,
  WorkItemStateChangedSchema,
} from "../../../gen/codex/events/v1/workitem_events_pb.js";
import { WorkItemState } from "../../../gen/codex/workitem/v1/work_item_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import { decodeEnvelope, unpackPayload } from "../../../mesh/events/envelope.js";
import { type ConsumedMessage, DurableConsumer, PermanentError } from "../../../mesh/nats/consumer.js";
import { type Core, type Tx, transact } from "../core.js";
import { approvalGranted } from "../dispatch/approval.js";
import { cancelTask } from "../dispatch/cancel.js";
import { recordOutcome } from "../dispatch/dependencies.js";
import { applyRunOutcome, applyRunStarted, type RunResult } from "../dispatch/outcome.js";
import type { Outcome } from "../store/tasks.js";
import { liveTaskOf } from "../store/tasks.js";
import type { Cause } from "./publish.js";
import { handleScheduleCommand } from "./schedule-command.js";

/** Decodes a consumed envelope and its typed payload; undecodable messages go to the DLQ at once. */
export function decode<D extends DescMessage>(
  msg: ConsumedMessage,
  schema: D,
): [EventEnvelope, MessageShape<D>] {
  try {
    const env = decodeEnvelope(msg.data);
    const payload = unpackPayload(env, schema);
    if (!payload) throw new Error(`payload is ${env.payload?.typeUrl}, expected ${schema.typeName}`);
    return [env, payload];
  } catch (err) {
    throw new PermanentError(`undecodable ${schema.typeName}: ${String(err)}`);
  }
}

const PRINCIPAL_TYPES: Partial<Record<ActorType, Principal["type"]>> = {
  [ActorType.USER]: "user",
  [ActorType.API_KEY]: "api_key",
  [ActorType.AGENT]: "agent",
};

/** The cause of what handling an event changes: its actor, correlation, and the event itself. */
export function causeOf(env: EventEnvelope): Cause {
  const type = PRINCIPAL_TYPES[env.actor?.type ?? ActorType.UNSPECIFIED] ?? "service";
  return {
    principal: { type, id: env.actor?.id || env.source || "unknown" },
    correlationId: env.correlationId,
    causationId: env.id,
  };
}

const RESULTS: Partial<Record<RunState, RunResult>> = {
  [RunState.SUCCEEDED]: "SUCCEEDED",
  [RunState.FAILED]: "FAILED",
  [RunState.CANCELLED]: "CANCELLED",
  [RunState.LOST]: "LOST",
};

/** Outcomes that are expected races (the run was superseded, the task is gone) are acked. */
function ignoreStale(err: unknown): void {
  const e = ServiceError.from(err);
  if (e.code === Code.NOT_FOUND || e.code === Code.FAILED_PRECONDITION) return;
  throw err;
}

async function onRunCompleted(core: Core, msg: ConsumedMessage): Promise<void> {
  const [env, e] = decode(msg, RunCompletedSchema);
  const result = RESULTS[e.status];
  if (!result || e.taskId === "") return;
  await applyRunOutcome(
    core,
    { taskId: e.taskId, runId: e.runId, attempt: e.attempt, result, error: e.error },
    causeOf(env),
  ).catch(ignoreStale);
}

async function onRunStarted(core: Core, msg: ConsumedMessage): Promise<void> {
  const [env, e] = decode(msg, RunStartedSchema);
  if (e.taskId === "") return;
  await applyRunStarted(
    core,
    { taskId: e.taskId, runId: e.runId, attempt: e.attempt, agentId: e.agentId },
    causeOf(env),
  );
}

/** Once per event id, in the transaction that applies it. */
async function firstTime(tx: Tx, eventId: string): Promise<boolean> {
  const res = await tx.client.query(
    "INSERT INTO processed_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING",
    [eventId],
  );
  return (res.rowCount ?? 0) > 0;
}

const OUTCOMES: Partial<Record<WorkItemState, Outcome>> = {
  [WorkItemState.DONE]: "DONE",
  [WorkItemState.FAILED]: "FAILED",
  [WorkItemState.CANCELLED]: "CANCELLED",
};

/**
 * Work item news: DONE/FAILED/CANCELLED feed the dependency graph (a reviewer's accept or
 * reject included); FAILED -> QUEUED (a retry) clears a failure; CANCELLED cancels the item's
 * task; PROPOSED -> APPROVED lifts an APPROVAL wait.
 */
async function onWorkItemStateChanged(core: Core, msg: ConsumedMessage): Promise<void> {
  const [env, e] = decode(msg, WorkItemStateChangedSchema);
  const cause = causeOf(env);
  await transact(core, async (tx) => {
    if (!(await firstTime(tx, env.id))) return;
    const retried = e.previousState === WorkItemState.FAILED && e.newState === WorkItemState.QUEUED;
    const outcome = retried ? "" : OUTCOMES[e.newState];
    if (outcome !== undefined && e.projectId !== "") {
      const news = {
        workItemId: e.workItemId,
        projectId: e.projectId,
        outcome,
        version: env.aggregateVersion,
      };
      await recordOutcome(core, tx, news, cause);
    }
    if (e.newState === WorkItemState.CANCELLED) {
      const t = await liveTaskOf(tx.client, e.workItemId, true);
      if (t)
        await cancelTask(
          core,
          tx,
          t,
          { reason: e.reason || "work item cancelled", workItemCancelled: true },
          cause,
        );
    }
    if (e.previousState === WorkItemState.PROPOSED && e.newState === WorkItemState.APPROVED) {
      await approvalGranted(core, tx, e.workItemId, cause);
    }
  });
}

async function onApprovalGranted(core: Core, msg: ConsumedMessage): Promise<void> {
  const [env, e] = decode(msg, ApprovalGrantedSchema);
  await transact(core, async (tx) => {
    if (await firstTime(tx, env.id)) await approvalGranted(core, tx, e.workItemId, causeOf(env));
  });
}

/** The scheduler's durable consumers, one filter subject each (cheapest on NATS 2.9). */
export function createConsumers(
  core: Core,
  nc: NatsConnection,
  concurrency: number,
): { name: string; consumer: DurableConsumer }[] {
  const s = core.subjects;
  const make = (
    durable: string,
    stream: string,
    subject: string,
    handler: (m: ConsumedMessage) => Promise<void>,
  ) => ({
    name: durable,
    consumer: new DurableConsumer({
      nc,
      stream,
      durable,
      filterSubjects: [subject],
      dlqSubject: s.dlq(durable),
      handler,
      concurrency,
      retryBackoff: { initialMs: 200, maxMs: 10_000 },
      onError: (err, m) =>
        core.logger.warn({ err, subject: m?.subject, consumer: durable }, "event handling failed"),
    }),
  });
  return [
    make("scheduler-run-completed", s.streams.events, s.event("run", "RunCompleted"), (m) =>
      onRunCompleted(core, m),
    ),
    make("scheduler-run-started", s.streams.events, s.event("run", "RunStarted"), (m) =>
      onRunStarted(core, m),
    ),
    make("scheduler-work-item-state", s.streams.events, s.event("work_item", "WorkItemStateChanged"), (m) =>
      onWorkItemStateChanged(core, m),
    ),
    make(
      "scheduler-approval-granted",
      s.streams.events,
      s.event("approval_request", "ApprovalGranted"),
      (m) => onApprovalGranted(core, m),
    ),
    make("scheduler-schedule-command", s.streams.commands, s.command("scheduler", "ScheduleWorkItem"), (m) =>
      handleScheduleCommand(core, decode, m),
    ),
  ];
}
