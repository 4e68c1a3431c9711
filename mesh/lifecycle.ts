/**
 * Start-up and graceful shutdown of a service's long-lived parts, in one explicit order.
 *
 * Shutdown order (the one place it is written down). Components stop in the reverse of the order
 * they were added, so add them in dependency order — connections first, the gRPC server last:
 *
 *   1. stop accepting: gRPC health flips to NOT_SERVING so load balancers and the mesh stop routing
 *      new calls here (the gRPC server component, added last, stops first);
 *   2. drain in-flight RPCs within the grace time, then cancel what is left;
 *   3. stop consumers and outbox relays: no new messages are taken, in-flight ones finish and ack;
 *   4. close NATS, Redis and PostgreSQL connections;
 *   5. exit: 0 when everything stopped cleanly, 1 otherwise or when the force time passed.
 *
 * Why a state machine: health checks, logs and tests need to know whether the process is
 * starting, serving or draining, and stop() must be safe to call from a signal, a failed start
 * and a test at once — so stop() is idempotent and every caller gets the same promise.
 */
import type { Logger } from "./logging.js";

export type LifecycleState = "INITIALIZED" | "STARTING" | "RUNNING" | "DRAINING" | "STOPPED" | "FAILED";

/** Passed to `stop`: why, and until when a graceful stop may take before it should force. */
export interface StopContext {
  reason: string;
  /** Epoch milliseconds by which the component should have finished gracefully. */
  deadline: number;
  /** Aborted at `deadline`: e.g. the gRPC server then cancels the RPCs still running. */
  signal: AbortSignal;
}

/**
 * A long-lived part. `stop` may ignore its argument; components added without `start` just stop.
 * Resolved values are ignored (so `start: () => ensureStreams(...)` fits as is).
 */
export interface Component {
  start?(): Promise<unknown>;
  stop(ctx: StopContext): Promise<unknown>;
}

type LogSink = Pick<Logger, "info" | "warn" | "error">;
type StateListener = (state: LifecycleState, previous: LifecycleState) => void;

/** Where signals come from; `process` in production, an EventEmitter in tests. */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: () => void): unknown;
  off(event: NodeJS.Signals, listener: () => void): unknown;
}

export interface SignalOptions {
  /** Time given to graceful draining (the components' `StopContext.deadline`). */
  graceMs: number;
  /** Hard limit from the first signal: if stop has not finished by then, exit(1). */
  forceMs: number;
  logger: LogSink;
  exit?: (code: number) => void;
  signals?: readonly NodeJS.Signals[];
  source?: SignalSource;
}

/** Owns the start/stop order of a service's components; see the module comment for the order. */
export class Lifecycle {
  #state: LifecycleState = "INITIALIZED";
  readonly #components: { name: string; component: Component }[] = [];
  readonly #started: { name: string; component: Component }[] = [];
  readonly #listeners = new Set<StateListener>();
  readonly #logger: LogSink | undefined;
  readonly #graceMs: number;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  constructor(opts: { logger?: LogSink; graceMs?: number } = {}) {
    this.#logger = opts.logger;
    this.#graceMs = opts.graceMs ?? 10_000;
  }

  get state(): LifecycleState {
    return this.#state;
  }

  /** Subscribes to state changes; returns the unsubscribe function. */
  onStateChange(listener: StateListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Registers a component; only before `start()`, so the order is fixed and visible in main.ts. */
  add(name: string, component: Component): this {
    if (this.#state !== "INITIALIZED") throw new Error(`cannot add "${name}" in state ${this.#state}`);
    this.#components.push({ name, component });
    return this;
  }

  /**
   * Starts components in the order added. If one fails, the ones already started are stopped
   * (in reverse), the state becomes FAILED and the error is rethrown.
   */
  start(): Promise<void> {
    if (this.#state !== "INITIALIZED")
      return Promise.reject(new Error(`cannot start in state ${this.#state}`));
    this.#transition("STARTING");
    this.#starting = this.#startAll();
    return this.#starting;
  }

  async #startAll(): Promise<void> {
    for (const entry of this.#components) {
      if (this.#stopping) return; // stop() was requested meanwhile: it stops what has started.
      try {
        await entry.component.start?.();
      } catch (err) {
        this.#logger?.error({ err, component: entry.name }, "component failed to start");
        await this.#stopStarted({ reason: `start of ${entry.name} failed`, graceMs: this.#graceMs });
        this.#transition("FAILED");
        throw err;
      }
      this.#started.push(entry);
      this.#logger?.info({ component: entry.name }, "component started");
    }
    this.#transition("RUNNING");
  }

  /**
   * Stops started components in reverse order, each after the previous finished; a component that
   * fails to stop is logged and the rest still stop (state FAILED at the end). Idempotent.
   */
  stop(reason: string, opts: { graceMs?: number } = {}): Promise<void> {
    this.#stopping ??= this.#stopAll(reason, opts.graceMs ?? this.#graceMs);
    return this.#stopping;
  }

  async #stopAll(reason: string, graceMs: number): Promise<void> {
    if (this.#state === "STOPPED" || this.#state === "FAILED") return;
    this.#transition("DRAINING");
    this.#logger?.info({ reason, graceMs }, "draining");
    await this.#starting?.catch(() => undefined);
    // A failed start already stopped what it had started (the cast: TS keeps the pre-await narrowing).
    if ((this.#state as LifecycleState) === "FAILED") return;
    const clean = await this.#stopStarted({ reason, graceMs });
    this.#transition(clean ? "STOPPED" : "FAILED");
  }

  async #stopStarted(opts: { reason: string; graceMs: number }): Promise<boolean> {
    const deadline = Date.now() + opts.graceMs;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error("grace time exceeded")), opts.graceMs);
    timer.unref();
    let clean = true;
    try {
      for (const { name, component } of this.#started.splice(0).reverse()) {
        try {
          await component.stop({ reason: opts.reason, deadline, signal: abort.signal });
          this.#logger?.info({ component: name }, "component stopped");
        } catch (err) {
          clean = false;
          this.#logger?.error({ err, component: name }, "component failed to stop");
        }
      }
    } finally {
      clearTimeout(timer);
    }
    return clean;
  }

  /**
   * On SIGTERM/SIGINT: stop() with `graceMs`, then exit(0), or exit(1) if stopping failed. If stop
   * has not finished `forceMs` after the signal, exit(1). A second signal exits(1) at once (an
   * operator pressing Ctrl-C twice means it). Returns a function removing the handlers.
   */
  handleSignals(opts: SignalOptions): () => void {
    const exit = opts.exit ?? ((code: number) => process.exit(code));
    const source = opts.source ?? process;
    const signals = opts.signals ?? (["SIGTERM", "SIGINT"] as const);
    let force: NodeJS.Timeout | undefined;
    let received = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (received) {
        opts.logger.warn({ signal }, "second signal: exiting now");
        clearTimeout(force);
        exit(1);
        return;
      }
      received = true;
      opts.logger.info({ signal, graceMs: opts.graceMs, forceMs: opts.forceMs }, "shutdown requested");
      force = setTimeout(() => {
        opts.logger.error(
          { forceMs: opts.forceMs, state: this.#state },
          "shutdown exceeded force time: exiting",
        );
        exit(1);
      }, opts.forceMs);
      void this.stop(`signal ${signal}`, { graceMs: opts.graceMs }).then(() => {
        clearTimeout(force);
        exit(this.#state === "STOPPED" ? 0 : 1);
      });
    };
    const handlers = signals.map((signal) => [signal, () => onSignal(signal)] as const);
    for (const [signal, handler] of handlers) source.on(signal, handler);
    return () => {
      for (const [signal, handler] of handlers) source.off(signal, handler);
    };
  }

  #transition(next: LifecycleState): void {
    const previous = this.#state;
    if (previous === next) return;
    this.#state = next;
    for (const listener of this.#listeners) {
      try {
        listener(next, previous);
      } catch (err) {
        this.#logger?.error({ err }, "lifecycle state listener failed");
      }
    }
  }
}
