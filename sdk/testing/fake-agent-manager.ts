/**
 * A stand-in Agent Manager speaking the Connect protocol of connect.proto over real gRPC, for
 * the SDK's own tests: it lets a test script what the manager does (assign, cancel, answer,
 * declare a lease stale, drop the stream, refuse credentials) and records what the agent sent
 * (with arrival times). It acknowledges every message at once. It is not the Agent Manager:
 * the SDK's integration tests run against the real one (services/agent-manager).
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { anyPack, durationFromMs, timestampNow } from "@bufbuild/protobuf/wkt";
import { AgentManagerService } from "../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import type { ConnectRequest, ConnectResponseSchema } from "../../gen/codex/agentmanager/v1/connect_pb.js";
import { RunSchema, RunState, type WorkItemSnapshotSchema } from "../../gen/codex/agentmanager/v1/run_pb.js";
import { Code as RpcCode } from "../../gen/google/rpc/code_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Code, ServiceError } from "../../mesh/errors.js";
import { GrpcServer } from "../../mesh/grpc/server.js";
import type { ServiceImpl } from "../../mesh/grpc/types.js";
import { createLogger } from "../../mesh/logging.js";
import { Channel } from "./channel.js";

type ResponseInit = MessageInitShape<typeof ConnectResponseSchema>;
export type Received = { at: number; msg: ConnectRequest };

export interface FakeOptions {
  heartbeatMs?: number;
  /** RegisterAgent fails with this code (e.g. UNAUTHENTICATED) while set. */
  registerError?: Code;
}

export class FakeAgentManager {
  readonly received: Received[] = [];
  registrations = 0;
  connections = 0;
  registerError: Code | undefined;
  /** While true, acknowledgements are held back (a manager slow to ack); `releaseAcks` sends the latest. */
  holdAcks = false;
  #heldAck: ResponseInit | undefined;
  /** While true, the fake reads but neither answers nor acknowledges (a half-dead stream). */
  silent = false;
  /** When set, the next hello is answered by ending the stream with this code. */
  connectError: { code: Code; reason?: string } | undefined;
  readonly #server = new GrpcServer({
    logger: createLogger({ service: "fake-agent-manager", level: "silent" }),
  });
  readonly #stale = new Set<string>();
  #stream: Channel<ResponseInit> | undefined;
  #waiters: { pred: (r: Received) => boolean; resolve: (r: Received) => void }[] = [];
  #port = 0;

  constructor(private readonly opts: FakeOptions = {}) {
    this.registerError = opts.registerError;
    const impl: Record<string, unknown> = {};
    for (const m of AgentManagerService.methods) {
      impl[m.localName] = () => {
        throw new ServiceError(Code.UNIMPLEMENTED, `${m.name} is not faked`);
      };
    }
    impl.registerAgent = async () => {
      this.registrations += 1;
      if (this.registerError !== undefined) throw new ServiceError(this.registerError, "refused by the fake");
      return {
        agent: { id: "agent-1", name: "fake" },
        sessionToken: `session-${this.registrations}`,
        heartbeatInterval: durationFromMs(this.opts.heartbeatMs ?? 100),
      };
    };
    impl.connect = (reqs: AsyncIterable<ConnectRequest>) => this.#connect(reqs);
    this.#server.add(AgentManagerService, impl as ServiceImpl<typeof AgentManagerService>);
  }

  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  async start(port = 0): Promise<this> {
    this.#port = await this.#server.start(port, "127.0.0.1");
    this.#server.setServing("SERVING");
    return this;
  }

  async stop(): Promise<void> {
    this.#stream?.close();
    await this.#server.stop(100);
  }

  /** Messages of one kind, in arrival order. */
  messages<K extends NonNullable<ConnectRequest["message"]["case"]>>(kind: K) {
    return this.received
      .filter((r) => r.msg.message.case === kind)
      .map((r) => ({
        at: r.at,
        value: r.msg.message.value as Extract<ConnectRequest["message"], { case: K }>["value"],
      }));
  }

  /** Resolves with the first received message (past or future) matching `pred`. */
  waitFor(pred: (r: Received) => boolean, timeoutMs = 5_000): Promise<Received> {
    const seen = this.received.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("fake agent manager: timed out waiting")), timeoutMs);
      this.#waiters.push({
        pred,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
    });
  }

  waitForKind(kind: NonNullable<ConnectRequest["message"]["case"]>, runId?: string, timeoutMs?: number) {
    return this.waitFor(
      (r) =>
        r.msg.message.case === kind &&
        (runId === undefined || (r.msg.message.value as { runId?: string }).runId === runId),
      timeoutMs,
    );
  }

  /** Pushes an assignment of a fresh run. */
  assign(
    runId: string,
    init: { workItem?: MessageInitShape<typeof WorkItemSnapshotSchema> } = {},
    token = 1n,
  ): void {
    this.send({
      message: {
        case: "assignment",
        value: {
          run: create(RunSchema, { id: runId, state: RunState.ASSIGNED, fencingToken: token, attempt: 1 }),
          workItem: init.workItem ?? { workItemId: `wi-${runId}`, projectId: "p-1", title: "build" },
          fencingToken: token,
        },
      },
    });
  }

  cancel(runId: string, token = 1n): void {
    this.send({
      message: { case: "cancel", value: { runId, fencingToken: token, reason: "cancelled by test" } },
    });
  }

  answer(runId: string, requestId: string, values: Record<string, string>): void {
    this.send({
      message: { case: "infoAnswer", value: { runId, requestId, infoRequestId: "ir-1", values } },
    });
  }

  /** Stops holding acknowledgements back and sends the latest (cumulative) one. */
  releaseAcks(): void {
    this.holdAcks = false;
    if (this.#heldAck) this.send(this.#heldAck);
    this.#heldAck = undefined;
  }

  /** From now on, messages about `runId` are refused with STALE_LEASE. */
  markStale(runId: string): void {
    this.#stale.add(runId);
  }

  /** Ends the current stream with `code`, as a crashing or restarting manager would. */
  dropStream(code = Code.UNAVAILABLE, reason?: string): void {
    this.#stream?.fail(
      new ServiceError(code, "stream dropped by the fake", reason ? reasonDetail(reason) : []),
    );
    this.#stream = undefined;
  }

  send(msg: ResponseInit): void {
    if (!this.#stream) throw new Error("no agent connected");
    this.#stream.push(msg);
  }

  get connected(): boolean {
    return this.#stream !== undefined;
  }

  #connect(reqs: AsyncIterable<ConnectRequest>): AsyncIterable<ResponseInit> {
    this.connections += 1;
    this.#stream?.fail(new ServiceError(Code.ABORTED, "replaced"));
    const out = new Channel<ResponseInit>();
    this.#stream = out;
    void (async () => {
      try {
        for await (const msg of reqs) this.#receive(msg, out);
        out.close();
      } catch {
        out.close();
      }
      if (this.#stream === out) this.#stream = undefined;
    })();
    return out;
  }

  #receive(msg: ConnectRequest, out: Channel<ResponseInit>): void {
    const r = { at: Date.now(), msg };
    this.received.push(r);
    const matched = this.#waiters.filter((w) => w.pred(r));
    this.#waiters = this.#waiters.filter((w) => !matched.includes(w));
    for (const w of matched) w.resolve(r);
    const m = msg.message;
    if (this.silent) return;
    if (m.case === "hello") {
      if (this.connectError) {
        const e = this.connectError;
        this.connectError = undefined;
        out.fail(new ServiceError(e.code, "refused by the fake", e.reason ? reasonDetail(e.reason) : []));
        return;
      }
      const resumed = m.value.resumeRuns.map((l) => ({
        runId: l.runId,
        fencingToken: l.fencingToken,
        valid: !this.#stale.has(l.runId),
      }));
      out.push({
        message: {
          case: "welcome",
          value: {
            agentId: m.value.agentId,
            heartbeatInterval: durationFromMs(this.opts.heartbeatMs ?? 100),
            resumed,
            serverTime: timestampNow(),
          },
        },
      });
      return;
    }
    const runId = (m.value as { runId?: string } | undefined)?.runId;
    if (runId && this.#stale.has(runId) && m.case !== "heartbeat") {
      out.push({
        message: {
          case: "error",
          value: {
            code: RpcCode.FAILED_PRECONDITION,
            reason: "STALE_LEASE",
            message: "stale",
            messageSeq: msg.messageSeq,
            runId,
          },
        },
      });
    }
    const leases =
      m.case === "heartbeat"
        ? m.value.runs.map((l) => ({
            runId: l.runId,
            fencingToken: l.fencingToken,
            valid: !this.#stale.has(l.runId),
          }))
        : [];
    const ack: ResponseInit = { message: { case: "ack", value: { ackedSeq: msg.messageSeq, leases } } };
    if (this.holdAcks) this.#heldAck = ack;
    else out.push(ack);
  }
}

function reasonDetail(reason: string) {
  return [errorInfo(reason)];
}

function errorInfo(reason: string) {
  return anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason, domain: "codex.agentmanager.v1" }));
}
