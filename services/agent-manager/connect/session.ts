/**
 * One agent's Connect stream (connect.proto), manager side.
 *
 * Order on the wire: the agent's hello, then `welcome` (and drain/cancel/answers owed to
 * resumed runs) before any assignment. Agent messages are processed as they arrive, one chain
 * per run so each run's messages keep their order while different runs (and heartbeats) proceed
 * in parallel and share group commits; acknowledgements are cumulative and coalesced (one Ack
 * per turn of the event loop carries the watermark, the lease renewals of heartbeats and the
 * ids of new info requests). A refused message gets a StreamError and the stream stays open.
 */
import { randomUUID } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRequest, InfoRequestCreated } from "../../../gen/codex/agentmanager/v1/connect_pb.js";
import { WorkItemSnapshotSchema } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import type { Code as RpcCode } from "../../../gen/google/rpc/code_pb.js";
import { Code, failedPrecondition, ServiceError } from "../../../mesh/errors.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import type { Core } from "../core.js";
import type { LeaseStatusInit } from "../dispatch/agent-ops.js";
import { answersFor } from "../dispatch/info-ops.js";
import { streamErrorOf } from "../errors.js";
import { type AgentRow, profileOf } from "../store/agents.js";
import { getRun, leasedRunsOf, type RunRow, toRun } from "../store/runs.js";
import { AckTracker } from "./ack-tracker.js";
import { openSession, type ResponseInit } from "./hello.js";
import { taskOf } from "./message-tasks.js";
import { OutboundQueue } from "./outbound-queue.js";

const HELLO_TIMEOUT_MS = 10_000;

type Step = IteratorResult<ConnectRequest> | undefined;

export class Session {
  readonly id = randomUUID();
  readonly out = new OutboundQueue<ResponseInit>();
  agent: AgentRow | undefined;
  readonly #acks = new AckTracker();
  readonly #chains = new Map<string, Promise<void>>();
  #leases: LeaseStatusInit[] = [];
  #infos: InfoRequestCreated[] = [];
  #ackScheduled = false;
  /** A heartbeat awaits its Ack (agents detect dead streams by beats going unacknowledged). */
  #beats = false;
  readonly #pushed = new Set<string>();
  readonly #earlyCancels = new Map<string, ResponseInit>();
  #isClosed = false;
  /** Wakes the read in progress when the stream is closed from this side. */
  #wakeRead: (() => void) | undefined;
  readonly #deliver = (row: RunRow) => this.#assignment(row);

  constructor(
    private readonly core: Core,
    private readonly ctx: CallContext,
  ) {
    ctx.signal.addEventListener("abort", () => this.close(), { once: true });
  }

  /** Starts reading `reqs`; the returned iterable is the manager's side of the stream. */
  open(reqs: AsyncIterable<ConnectRequest>): AsyncIterable<ResponseInit> {
    void this.#run(reqs[Symbol.asyncIterator]());
    return this.out;
  }

  /** Ends the stream: normally, or with `error` as its status. */
  close(error?: unknown): void {
    if (error === undefined) this.out.end();
    else this.out.fail(error);
    this.#isClosed = true;
    this.#wakeRead?.();
  }

  /** The agent should stop a run. */
  cancel(runId: string, token: bigint, reason: string): void {
    const msg: ResponseInit = {
      message: {
        case: "cancel",
        value: {
          runId,
          fencingToken: token,
          reason,
          grace: durationFromMs(this.core.settings.cancelGraceMs),
        },
      },
    };
    if (this.#pushed.has(runId)) this.out.push(msg);
    else this.#earlyCancels.set(runId, msg);
  }

  /** Pushes the undelivered answers of a run (if this agent holds it). */
  async answers(runId: string): Promise<void> {
    if (!this.agent) return;
    for (const value of await answersFor(this.core, this.agent.id, [runId], false)) {
      this.out.push({ message: { case: "infoAnswer", value } });
    }
  }

  /** Pushes a run leased to this agent outside the dispatcher (ClaimRun command). */
  async adopt(runId: string): Promise<void> {
    const agent = this.agent;
    if (!agent || this.#pushed.has(runId)) return;
    const row = await getRun(this.core.pool, runId);
    if (!row || row.agent_id !== agent.id || (row.state !== 2 && row.state !== 3)) return;
    this.core.dispatcher.adopt(agent.id, runId);
    this.#assignment(row);
  }

  drain(reason: string, deadlineMs: number | null): void {
    this.out.push({
      message: {
        case: "drain",
        value: { reason, ...(deadlineMs !== null ? { deadline: timestampFromMs(deadlineMs) } : {}) },
      },
    });
  }

  async #run(it: AsyncIterator<ConnectRequest>): Promise<void> {
    try {
      const first = await this.#next(it, HELLO_TIMEOUT_MS);
      if (first === undefined || first.done) return this.close();
      if (first.value.message.case !== "hello") {
        return this.close(failedPrecondition("the first message of a Connect stream must be a hello"));
      }
      const opened = await openSession(this.core, first.value.message.value, this.ctx);
      const agent = opened.agent;
      this.agent = agent;
      this.#acks.received(first.value.messageSeq);
      this.#acks.done(first.value.messageSeq);
      this.core.sessions.opened(this);
      for (const m of opened.messages) this.out.push(m);
      for (const r of opened.resumed) this.#pushed.add(r.id);
      const held = await leasedRunsOf(this.core.pool, agent.id);
      this.core.dispatcher.attach(
        agent.id,
        {
          profile: profileOf(agent),
          capacity: agent.capacity,
          draining: agent.draining,
          held: held.map((r) => r.id),
        },
        this.#deliver,
      );
      for (;;) {
        const step = await this.#next(it);
        if (step === undefined || step.done) break;
        this.#handle(step.value);
      }
      await Promise.all(this.#chains.values());
      this.#flushAck();
      this.close();
    } catch (err) {
      this.close(err);
    } finally {
      if (this.agent) {
        this.core.dispatcher.detach(this.agent.id, this.#deliver);
        this.core.sessions.closed(this);
      }
    }
  }

  /**
   * The next agent message, or undefined once the stream is closed from this side. Racing each
   * read against one long-lived "closed" promise would pile a reaction on it per message for the
   * whole life of the stream; instead close() wakes the one read in progress.
   */
  #next(it: AsyncIterator<ConnectRequest>, timeoutMs?: number): Promise<Step> {
    if (this.#isClosed) return Promise.resolve(undefined);
    return new Promise<Step>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = () => {
        clearTimeout(timer);
        this.#wakeRead = undefined;
      };
      this.#wakeRead = () => {
        settle();
        resolve(undefined);
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          settle();
          reject(failedPrecondition("no hello received within 10 s"));
        }, timeoutMs);
        timer.unref();
      }
      it.next().then(
        (step) => {
          settle();
          resolve(step);
        },
        (err: unknown) => {
          settle();
          reject(err);
        },
      );
    });
  }

  #handle(msg: ConnectRequest): void {
    this.#acks.received(msg.messageSeq);
    const [runId, fn] = taskOf(this.core, this.agent?.id ?? "", this.ctx.correlationId, msg, {
      leases: (statuses) => this.#leases.push(...statuses),
      infoCreated: (created) => this.#infos.push(created),
      beat: () => {
        this.#beats = true;
      },
      ended: (runId) => {
        this.#pushed.delete(runId);
        this.#earlyCancels.delete(runId);
      },
    });
    this.#track(msg.messageSeq, runId, fn);
  }

  /** Runs `fn` after earlier messages of the same run; refusals become StreamErrors. */
  #track(seq: bigint, runId: string, fn: () => Promise<void>): void {
    const prev = runId === "" ? Promise.resolve() : (this.#chains.get(runId) ?? Promise.resolve());
    const key = runId === "" ? `#${seq}` : runId;
    const tail: Promise<void> = prev
      .then(fn)
      .catch((err: unknown) => this.#refuse(seq, runId, err))
      .then(() => {
        this.#acks.done(seq);
        if (this.#chains.get(key) === tail) this.#chains.delete(key);
        this.#scheduleAck();
      });
    this.#chains.set(key, tail);
  }

  #refuse(seq: bigint, runId: string, err: unknown): void {
    const e = ServiceError.from(err);
    if (e.code === Code.INTERNAL)
      this.core.logger.error({ err: e.cause ?? e, runId }, "Connect message failed");
    const { code, reason, message } = streamErrorOf(e);
    this.out.push({
      message: {
        case: "error",
        value: { code: code as number as RpcCode, reason, message, messageSeq: seq, runId },
      },
    });
  }

  #scheduleAck(): void {
    if (this.#ackScheduled) return;
    this.#ackScheduled = true;
    setImmediate(() => {
      this.#ackScheduled = false;
      this.#flushAck();
    });
  }

  #flushAck(): void {
    const moved = this.#acks.advance();
    if (moved === undefined && !this.#beats && this.#leases.length === 0 && this.#infos.length === 0) return;
    this.#beats = false;
    const leases = this.#leases;
    const infoRequests = this.#infos;
    this.#leases = [];
    this.#infos = [];
    this.out.push({
      message: { case: "ack", value: { ackedSeq: moved ?? this.#acks.watermark(), leases, infoRequests } },
    });
  }

  #assignment(row: RunRow): void {
    const workItem = fromBinary(WorkItemSnapshotSchema, row.work_item);
    const leaseExpireTime = row.lease_expire_at ? timestampFromMs(row.lease_expire_at.getTime()) : undefined;
    this.#pushed.add(row.id);
    this.out.push({
      message: {
        case: "assignment",
        value: {
          run: toRun(row),
          workItem,
          fencingToken: row.fencing_token,
          ...(leaseExpireTime ? { leaseExpireTime } : {}),
        },
      },
    });
    const early = this.#earlyCancels.get(row.id);
    if (early) {
      this.#earlyCancels.delete(row.id);
      this.out.push(early);
    }
  }
}
