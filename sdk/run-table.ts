/**
 * The runs this agent holds, and everything the manager says about them: assignments (run or
 * refuse), cancellations, lease verdicts (from Welcome and Ack), info answers and refusals. It
 * executes each accepted run's handler and turns the outcome into exactly one message — a
 * completion, a hand-back (reject), or nothing at all when the lease was lost — sent only after
 * the run's remaining logs, and it forgets the run once the manager acknowledged that message.
 */
import { create } from "@bufbuild/protobuf";
import type { RunCancellation, StreamError } from "../gen/codex/agentmanager/v1/connect_pb.js";
import type { InfoAnswer } from "../gen/codex/agentmanager/v1/info_request_pb.js";
import type { LeaseStatus, RunAssignment } from "../gen/codex/agentmanager/v1/run_pb.js";
import { WorkItemSnapshotSchema } from "../gen/codex/agentmanager/v1/run_pb.js";
import type { Artifact } from "../gen/codex/workitem/v1/artifact_pb.js";
import { ActiveRun, type RunHost } from "./active-run.js";
import { isStaleLease } from "./failure.js";
import type { RunLeaseInit } from "./heartbeat.js";
import { MAX_CHUNK_BYTES } from "./log-buffer.js";
import type { Entry, Outbound } from "./outbound.js";
import { completionOf } from "./outcome.js";
import type { AssignmentHandler, RunResult, SdkLogger } from "./types.js";

export type RunSettlement = "completed" | "handed-back" | "abandoned";

export interface RunTableOptions {
  outbound: Outbound;
  logger: SdkLogger;
  capacity: number;
  /** Per-run buffered log bytes before lines are dropped. */
  maxLogBufferBytes: number;
  /** Log bytes queued or unacknowledged on the stream before runs stop flushing. */
  maxInFlightLogBytes: number;
  logFlushMs: number;
  /** A run left this agent: outcome acknowledged, handed back, or abandoned (lease lost). */
  onSettled?: (runId: string, how: RunSettlement) => void;
  upload(
    run: ActiveRun,
    name: string,
    contentType: string,
    data: AsyncIterable<Uint8Array> | Uint8Array | string,
  ): Promise<Artifact>;
}

export class RunTable implements RunHost {
  handler: AssignmentHandler | undefined;
  /** False once the worker drains: new assignments are handed back at once. */
  accepting = true;
  readonly #runs = new Map<string, ActiveRun>();
  readonly #executions = new Set<Promise<void>>();
  #idleWaiters: (() => void)[] = [];
  #flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: RunTableOptions) {}

  get size(): number {
    return this.#runs.size;
  }

  /** Leases to renew (heartbeats) and to resume (hello): every run whose lease we still hold. */
  leases(): RunLeaseInit[] {
    const out: RunLeaseInit[] = [];
    for (const run of this.#runs.values()) {
      if (run.stopped?.kind !== "lease-lost") out.push({ runId: run.runId, fencingToken: run.token });
    }
    return out;
  }

  offer(a: RunAssignment): void {
    const runId = a.run?.id ?? "";
    const held = this.#runs.get(runId);
    if (held && held.token === a.fencingToken) return; // a resent assignment we already run
    const refuse = !this.accepting
      ? "agent is shutting down"
      : !this.handler
        ? "agent has no assignment handler"
        : this.#executing() >= this.o.capacity
          ? "agent is at capacity"
          : undefined;
    if (refuse !== undefined || !this.handler) {
      this.o.logger.warn({ runId }, `handing an assignment back: ${refuse ?? "refused"}`);
      this.send(rejection(runId, a.fencingToken, refuse ?? "refused"));
      return;
    }
    const run = new ActiveRun(
      {
        runId,
        fencingToken: a.fencingToken,
        attempt: a.run?.attempt ?? 0,
        traceId: a.run?.traceId ?? "",
        workItem: a.workItem ?? create(WorkItemSnapshotSchema),
        run: a.run!,
      },
      this,
      this.o.maxLogBufferBytes,
    );
    this.#runs.set(runId, run);
    const exec = this.#execute(run, this.handler);
    this.#executions.add(exec);
    void exec.finally(() => this.#executions.delete(exec));
  }

  /**
   * Handlers running now. Runs whose outcome awaits its acknowledgement do not count: the
   * manager frees their slot when it records the outcome and may push the next assignment
   * before its Ack reaches us; refusing it then would turn that race into a rejection (and a
   * rejected run is never offered to this agent again).
   */
  #executing(): number {
    let n = 0;
    for (const run of this.#runs.values()) if (run.phase === "running") n += 1;
    return n;
  }

  cancel(c: RunCancellation): void {
    const run = this.#runs.get(c.runId);
    if (run && run.token === c.fencingToken) run.stop("cancel", c.reason || "cancelled");
  }

  /** Lease verdicts from Welcome.resumed and Ack.leases. */
  applyLeases(leases: LeaseStatus[]): void {
    for (const l of leases) {
      const run = this.#runs.get(l.runId);
      if (!run || run.token !== l.fencingToken) continue;
      if (l.valid) {
        if (l.cancelRequested) run.stop("cancel", "cancellation requested");
      } else if (run.phase === "running") {
        this.#leaseLost(run, "the agent manager no longer grants this run's lease");
      }
      // A run whose outcome is in flight usually reads "not valid" because that outcome already
      // ended it; its Ack (or a STALE_LEASE refusal of the outcome) will settle it either way.
    }
  }

  answer(a: InfoAnswer): void {
    const run = this.#runs.get(a.runId);
    if (!run?.answer(a.requestId, a.values))
      this.o.logger.warn({ runId: a.runId }, "info answer for no waiting request");
  }

  refused(e: StreamError, refusedEntry: Entry | undefined): void {
    const runId = e.runId || refusedEntry?.runId || "";
    const run = this.#runs.get(runId);
    if (run && isStaleLease(e.code, e.reason)) {
      this.#leaseLost(run, e.message);
      return;
    }
    if (run && refusedEntry?.payload.case === "infoRequest")
      run.refuseInfo(refusedEntry.payload.value.requestId ?? "", e.message);
    this.o.logger.warn(
      { code: e.code, reason: e.reason, runId, seq: e.messageSeq.toString() },
      `message refused: ${e.message}`,
    );
  }

  /** Stops every running handler; their runs go back to the manager when the handlers return. */
  handBackAll(reason: string): void {
    for (const run of this.#runs.values()) if (run.phase === "running") run.stop("hand-back", reason);
  }

  /** Stops every run without reporting anything (the worker failed and cannot deliver results). */
  abandonAll(reason: string): void {
    for (const run of this.#runs.values()) run.stop("lease-lost", reason);
  }

  /** Resolves true once every handler returned, or false after `timeoutMs`. */
  async handlersSettled(timeoutMs: number): Promise<boolean> {
    const all = Promise.all([...this.#executions]).then(() => true);
    return Promise.race([all, delay(timeoutMs, false)]);
  }

  /** Resolves once no run is held any more (every outcome acknowledged). */
  whenEmpty(): Promise<void> {
    if (this.#runs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  send(entry: Entry): void {
    this.o.outbound.enqueue(entry);
  }

  logsWritten(run: ActiveRun): void {
    if (run.logs.bufferedBytes >= MAX_CHUNK_BYTES) this.#flushAll();
    else this.#flushTimer ??= setTimeout(() => this.#flushAll(), this.o.logFlushMs);
  }

  upload(
    run: ActiveRun,
    name: string,
    contentType: string,
    data: AsyncIterable<Uint8Array> | Uint8Array | string,
  ) {
    return this.o.upload(run, name, contentType, data);
  }

  async #execute(run: ActiveRun, handler: AssignmentHandler): Promise<void> {
    run.reportRunning();
    let outcome: { returned: RunResult | undefined } | { thrown: unknown };
    try {
      outcome = { returned: (await handler(run.assignment, run)) ?? undefined };
    } catch (thrown) {
      outcome = { thrown };
    }
    run.phase = "completing";
    const stop = run.stopped;
    if (stop?.kind === "lease-lost") return this.#forget(run, "abandoned");
    this.#flushRun(run);
    if (stop?.kind === "hand-back") {
      this.send({
        ...rejection(run.runId, run.token, stop.message),
        onAcked: () => this.#forget(run, "handed-back"),
      });
      return;
    }
    const c = completionOf(outcome, stop?.kind === "cancel" ? stop.message : undefined);
    this.send({
      runId: run.runId,
      payload: { case: "complete", value: { runId: run.runId, fencingToken: run.token, ...c } },
      onAcked: () => this.#forget(run, "completed"),
    });
  }

  #leaseLost(run: ActiveRun, why: string): void {
    this.o.logger.warn({ runId: run.runId }, `lease lost, dropping the run: ${why}`);
    run.stop("lease-lost", why);
    this.o.outbound.dropRun(run.runId);
    if (run.phase === "completing") this.#forget(run, "abandoned");
  }

  #forget(run: ActiveRun, how: RunSettlement): void {
    if (this.#runs.get(run.runId) !== run) return;
    this.#runs.delete(run.runId);
    this.o.onSettled?.(run.runId, how);
    if (this.#runs.size > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #flushAll(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    for (const run of this.#runs.values()) {
      if (run.logs.bufferedBytes === 0 || run.stopped?.kind === "lease-lost") continue;
      if (this.o.outbound.logBytes >= this.o.maxInFlightLogBytes) break;
      this.#sendLogs(run);
    }
    for (const run of this.#runs.values()) {
      if (run.logs.bufferedBytes > 0 && run.stopped?.kind !== "lease-lost")
        this.#flushTimer ??= setTimeout(() => this.#flushAll(), this.o.logFlushMs);
    }
  }

  /** Sends everything the run buffered (before its outcome, so the log is complete). */
  #flushRun(run: ActiveRun): void {
    while (run.logs.bufferedBytes > 0) this.#sendLogs(run);
  }

  #sendLogs(run: ActiveRun): void {
    const chunks = run.logs.take();
    if (chunks.length === 0) return;
    const logBytes = chunks.reduce((n, c) => n + (c.data?.length ?? 0), 0);
    this.send({
      runId: run.runId,
      logBytes,
      payload: { case: "logs", value: { runId: run.runId, fencingToken: run.token, chunks } },
    });
  }
}

function rejection(runId: string, fencingToken: bigint, reason: string): Entry {
  return { runId, payload: { case: "reject", value: { runId, fencingToken, reason } } };
}

function delay<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(resolve, ms, value).unref());
}
