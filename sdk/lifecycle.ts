/**
 * The worker's lifecycle as an explicit state machine, so logs, health checks and callers can
 * ask where a worker stands instead of inferring it from flags.
 *
 *   INITIALIZED ─start→ CONNECTING ─welcome→ RUNNING ─stream lost→ CONNECTING (reconnect)
 *   CONNECTING | RUNNING ─stop/SIGTERM→ DRAINING ─in-flight done or handed back, stream closed→ STOPPED
 *   any non-terminal ─fatal (bad credentials, reconnect budget spent)→ FAILED
 *
 * DRAINING keeps reconnecting if the stream drops: completions of in-flight runs still have to
 * reach the manager before the worker may stop.
 */
export type WorkerState = "INITIALIZED" | "CONNECTING" | "RUNNING" | "DRAINING" | "STOPPED" | "FAILED";

const NEXT: Record<WorkerState, readonly WorkerState[]> = {
  INITIALIZED: ["CONNECTING", "STOPPED", "FAILED"],
  CONNECTING: ["RUNNING", "DRAINING", "FAILED"],
  RUNNING: ["CONNECTING", "DRAINING", "FAILED"],
  DRAINING: ["STOPPED", "FAILED"],
  STOPPED: [],
  FAILED: [],
};

/** Whether the lifecycle allows going from `from` to `to`. */
export function canTransition(from: WorkerState, to: WorkerState): boolean {
  return NEXT[from].includes(to);
}

/** Whether no further transition can happen. */
export function isTerminal(state: WorkerState): boolean {
  return state === "STOPPED" || state === "FAILED";
}

export type StateListener = (state: WorkerState, previous: WorkerState, reason: string) => void;

/** Holds the current state; refuses transitions the diagram does not allow. */
export class WorkerLifecycle {
  #state: WorkerState = "INITIALIZED";
  readonly #listeners = new Set<StateListener>();

  get state(): WorkerState {
    return this.#state;
  }

  /** Moves to `to`; returns false (and changes nothing) when the move is not allowed. */
  transition(to: WorkerState, reason: string): boolean {
    const from = this.#state;
    if (!canTransition(from, to)) return false;
    this.#state = to;
    for (const listener of this.#listeners) listener(to, from, reason);
    return true;
  }

  /** Subscribes to changes; returns the unsubscribe function. */
  onChange(listener: StateListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
