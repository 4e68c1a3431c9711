/**
 * AgentWorker: registers an agent, holds its Connect stream, runs assignments through a typed
 * handler, and stops gracefully.
 *
 * - Connection: RegisterAgent, then Connect (hello → Welcome). A lost stream is reopened with
 *   full-jitter exponential backoff (mesh backoffDelay); `reconnect.maxAttempts` consecutive
 *   failures end in FAILED. Failures are graded by gRPC code (failure.ts): transient ones
 *   reconnect, an invalid session re-registers, bad credentials or a refused protocol fail at
 *   once. After a reconnect the hello lists the runs still executing, and unacknowledged
 *   messages are resent (outbound.ts).
 * - Heartbeats come from their own timer (heartbeat.ts), never from the work.
 * - Shutdown, in this order (stop(), or SIGTERM/SIGINT via handleSignals):
 *   1. stop taking work (DRAINING: assignments that still arrive are handed back at once);
 *   2. let in-flight runs finish within `shutdown.graceMs`; then hand the rest back (their
 *      signals abort; each goes back to the manager as a reject when its handler returns);
 *   3. wait until the manager acknowledged every outcome, then close the stream;
 *   4. STOPPED (the signal helper then exits; past `shutdown.forceMs` it exits with 1 anyway).
 */
import { createLogger } from "../mesh/logging.js";
import { backoffDelay } from "../mesh/resilience/retry.js";
import { uploadArtifact } from "./artifact-upload.js";
import { AgentClients, registerAgent, type Session } from "./connection.js";
import { gradeFailure } from "./failure.js";
import { HeartbeatTimer } from "./heartbeat.js";
import { isTerminal, type StateListener, WorkerLifecycle, type WorkerState } from "./lifecycle.js";
import { Outbound } from "./outbound.js";
import { type RunSettlement, RunTable } from "./run-table.js";
import { runSession, type SessionEnd } from "./session.js";
import { durationMs, sleep } from "./time.js";
import type {
  AgentIdentity,
  AssignmentHandler,
  ConnectionOptions,
  ReconnectOptions,
  SdkLogger,
  ShutdownOptions,
} from "./types.js";

export interface AgentWorkerOptions {
  connection: ConnectionOptions;
  agent: AgentIdentity;
  handler?: AssignmentHandler;
  reconnect?: Partial<ReconnectOptions>;
  shutdown?: Partial<ShutdownOptions>;
  logger?: SdkLogger;
  /** Time allowed for the Welcome after opening a stream (default 10 s). */
  welcomeTimeoutMs?: number;
  /** Log batching: flush interval (default 100 ms) and memory bounds. */
  logs?: { flushMs?: number; maxBufferedBytesPerRun?: number; maxInFlightBytes?: number };
  /**
   * Called when a run leaves this agent: its outcome was acknowledged by the manager
   * ("completed"), it was handed back ("handed-back"), or its lease was lost ("abandoned").
   */
  onRunSettled?: (runId: string, how: RunSettlement) => void;
  /** Called when the manager drains this agent (DrainAgent): no new work will come until undrained. */
  onDrainNotice?: (reason: string) => void;
}

const HAND_BACK_WAIT_MS = 5_000;
const FLUSH_WAIT_MS = 5_000;
const CLOSE_WAIT_MS = 2_000;

export class AgentWorker {
  readonly #o: AgentWorkerOptions;
  readonly #life = new WorkerLifecycle();
  readonly #log: SdkLogger;
  readonly #clients: AgentClients;
  readonly #outbound = new Outbound();
  readonly #runs: RunTable;
  readonly #heartbeat: HeartbeatTimer;
  readonly #reconnect: ReconnectOptions;
  readonly #shutdown: ShutdownOptions;
  readonly #halt = new AbortController();
  #session: Session | undefined;
  #loop: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #closing = false;
  #failure: Error | undefined;

  constructor(opts: AgentWorkerOptions) {
    this.#o = opts;
    this.#log = opts.logger ?? createLogger({ service: `agent:${opts.agent.name}`, level: "info" });
    this.#clients = new AgentClients(opts.connection);
    this.#reconnect = { maxAttempts: 10, baseMs: 250, capMs: 10_000, ...opts.reconnect };
    this.#shutdown = { graceMs: 30_000, forceMs: 45_000, ...opts.shutdown };
    this.#runs = new RunTable({
      outbound: this.#outbound,
      logger: this.#log,
      capacity: opts.agent.capacity,
      maxLogBufferBytes: opts.logs?.maxBufferedBytesPerRun ?? 8 * 1024 * 1024,
      maxInFlightLogBytes: opts.logs?.maxInFlightBytes ?? 4 * 1024 * 1024,
      logFlushMs: opts.logs?.flushMs ?? 100,
      ...(opts.onRunSettled ? { onSettled: opts.onRunSettled } : {}),
      upload: (run, name, contentType, data) =>
        uploadArtifact(
          this.#clients.workItems,
          { workItemId: run.assignment.workItem.workItemId, runId: run.runId, fencingToken: run.token },
          { name, contentType, data },
          {
            headers: () => this.#clients.headers(this.agentId ?? "", run.assignment.workItem.projectId),
            signal: run.signal,
          },
        ),
    });
    if (opts.handler) this.#runs.handler = opts.handler;
    this.#heartbeat = new HeartbeatTimer(this.#outbound, () => this.#runs.leases(), 5_000);
    this.#life.onChange((state, previous, reason) =>
      this.#log.info({ state, previous }, `agent worker ${state}: ${reason}`),
    );
  }

  get state(): WorkerState {
    return this.#life.state;
  }

  /** Agent id assigned at registration. */
  get agentId(): string | undefined {
    return this.#session?.agentId;
  }

  /** Runs held right now (executing, or finished and awaiting acknowledgement). */
  get activeRuns(): number {
    return this.#runs.size;
  }

  /** Why the worker FAILED, if it did. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Sets the assignment handler (before or after start; an agent without one refuses work). */
  onAssignment(handler: AssignmentHandler): this {
    this.#runs.handler = handler;
    return this;
  }

  onStateChange(listener: StateListener): () => void {
    return this.#life.onChange(listener);
  }

  /** Connects; resolves when the first Welcome arrived, rejects if the worker fails or stops first. */
  start(): Promise<void> {
    if (!this.#life.transition("CONNECTING", "starting"))
      return Promise.reject(new Error(`cannot start in state ${this.state}`));
    const ready = new Promise<void>((resolve, reject) => {
      const off = this.#life.onChange((state) => {
        if (state === "RUNNING") resolve();
        else if (isTerminal(state) || state === "DRAINING")
          reject(this.#failure ?? new Error(`worker ${state} before connecting`));
        else return;
        off();
      });
    });
    this.#loop = this.#connectLoop();
    return ready;
  }

  /** Resolves with the final state once the worker is STOPPED or FAILED. */
  get done(): Promise<WorkerState> {
    if (isTerminal(this.state)) return Promise.resolve(this.state);
    return new Promise((resolve) => {
      const off = this.#life.onChange((state) => {
        if (!isTerminal(state)) return;
        off();
        resolve(state);
      });
    });
  }

  /** Graceful shutdown in the fixed order of the module comment. Idempotent. */
  stop(reason = "stop requested"): Promise<void> {
    this.#stopping ??= this.#drain(reason);
    return this.#stopping;
  }

  async #drain(reason: string): Promise<void> {
    if (this.state === "INITIALIZED") {
      this.#life.transition("STOPPED", reason);
      return;
    }
    if (!this.#life.transition("DRAINING", reason)) return;
    this.#runs.accepting = false;
    if (!(await this.#runs.handlersSettled(this.#shutdown.graceMs))) {
      this.#log.warn({ runs: this.#runs.size }, "grace time over: handing in-flight runs back");
      this.#runs.handBackAll("agent shutting down");
      await this.#runs.handlersSettled(HAND_BACK_WAIT_MS);
    }
    const flushed = await Promise.race([
      this.#runs.whenEmpty().then(() => true),
      sleep(FLUSH_WAIT_MS, undefined, false),
    ]);
    if (!flushed)
      this.#log.warn({ runs: this.#runs.size }, "outcomes not acknowledged; their leases will expire");
    this.#closing = true;
    this.#heartbeat.stop();
    this.#outbound.closeWhenDrained();
    await Promise.race([this.#loop, sleep(CLOSE_WAIT_MS, undefined, undefined)]);
    this.#halt.abort();
    await this.#loop;
    this.#clients.close();
    if (this.state === "DRAINING") this.#life.transition("STOPPED", reason);
  }

  async #connectLoop(): Promise<void> {
    let failures = 0;
    while (!this.#closing && !isTerminal(this.state)) {
      let end: SessionEnd;
      try {
        if (!this.#session) await this.#register();
        end = await this.#openSession(this.#session!);
      } catch (error) {
        end = { welcomed: false, error };
      }
      this.#heartbeat.stop();
      if (end.welcomed) failures = 0;
      if (this.#closing || this.#halt.signal.aborted) return;
      if (this.state === "RUNNING") this.#life.transition("CONNECTING", "stream lost");
      const graded = end.error === undefined ? undefined : gradeFailure(end.error);
      if (graded?.action === "fail") return this.#fail(`${graded.message} (${graded.reason ?? graded.code})`);
      if (graded?.action === "reregister") this.#session = undefined;
      failures += 1;
      if (failures >= this.#reconnect.maxAttempts) {
        return this.#fail(`gave up after ${failures} attempts: ${graded?.message ?? "stream closed"}`);
      }
      const wait = backoffDelay(failures - 1, this.#reconnect.baseMs, this.#reconnect.capMs);
      this.#log.warn(
        { attempt: failures, waitMs: Math.round(wait), code: graded?.code },
        `reconnecting: ${graded?.message ?? "stream closed"}`,
      );
      await sleep(wait, this.#halt.signal, undefined);
    }
  }

  async #register(): Promise<void> {
    this.#session = await registerAgent(this.#clients, this.#o.agent, this.agentId, this.#halt.signal);
    this.#log.info({ agentId: this.#session.agentId }, "registered");
  }

  #openSession(s: Session): Promise<SessionEnd> {
    return runSession({
      client: this.#clients.manager,
      outbound: this.#outbound,
      hello: {
        agentId: s.agentId,
        sessionToken: s.token,
        agentVersion: this.#o.agent.version ?? "",
        resumeRuns: this.#runs.leases(),
      },
      headers: this.#clients.headers(s.agentId),
      signal: this.#halt.signal,
      welcomeTimeoutMs: this.#o.welcomeTimeoutMs ?? 10_000,
      silenceTimeoutMs: () => Math.max(3 * this.#heartbeat.intervalMs, 100),
      handlers: {
        welcome: (w) => {
          this.#runs.applyLeases(w.resumed);
          this.#outbound.markWelcomed();
          this.#heartbeat.start(durationMs(w.heartbeatInterval) ?? s.heartbeatMs);
          if (this.state === "CONNECTING") this.#life.transition("RUNNING", "welcomed");
        },
        assignment: (a) => this.#runs.offer(a),
        cancel: (c) => this.#runs.cancel(c),
        infoAnswer: (a) => this.#runs.answer(a),
        drain: (d) => {
          this.#log.warn({}, `drained by the agent manager: ${d.reason}`);
          this.#o.onDrainNotice?.(d.reason);
        },
        ack: (a) => {
          this.#outbound.ack(a.ackedSeq);
          this.#runs.applyLeases(a.leases);
        },
        error: (e) => this.#runs.refused(e, this.#outbound.sentAt(e.messageSeq)),
      },
    });
  }

  #fail(message: string): void {
    this.#failure = new Error(message);
    this.#log.error({}, `agent worker failed: ${message}`);
    this.#runs.abandonAll(`agent worker failed: ${message}`);
    this.#heartbeat.stop();
    this.#halt.abort();
    this.#clients.close();
    this.#life.transition("FAILED", message);
  }
}
