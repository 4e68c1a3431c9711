/**
 * Circuit breaker per downstream, on opossum.
 *
 * Why: when a dependency is down, waiting for every call to time out ties up our handlers and
 * hammers the dependency while it tries to recover. After enough failures in a rolling window the
 * breaker opens and calls fail fast with `BreakerOpenError` (mapped to UNAVAILABLE); after
 * `resetTimeout` one trial call is let through (half-open) and its outcome closes or re-opens it.
 *
 * Only failures that say the downstream is unhealthy should count: INVALID_ARGUMENT or NOT_FOUND
 * are the caller's problem, and letting them open the breaker would turn one bad client into an
 * outage for everybody. Hence `isFailure`. Timeouts are off by default because gRPC deadlines
 * already bound every call; a second, different timeout here would only disagree with them.
 */
import CircuitBreaker from "opossum";

export type BreakerState = "closed" | "open" | "half_open";

export interface BreakerOptions {
  /** Failure percentage in the rolling window above which the breaker opens (default 50). */
  errorThresholdPercentage?: number;
  /** Milliseconds open before one trial call is allowed (default 10 000). */
  resetTimeout?: number;
  /** Calls needed in the window before the breaker may open at all (default 10). */
  volumeThreshold?: number;
  /** Length of the rolling statistics window in milliseconds (default 10 000). */
  rollingCountTimeout?: number;
  /** Per-call timeout in milliseconds, or false (default) to rely on gRPC deadlines. */
  timeout?: number | false;
  /** Whether an error counts against the downstream's health (default: every error does). */
  isFailure?: (err: unknown) => boolean;
  /** Called with the initial state and on every change; wire it to `metrics.breaker.setState`. */
  onStateChange?: (state: BreakerState, name: string) => void;
}

/** Thrown instead of calling the downstream while the breaker is open. */
export class BreakerOpenError extends Error {
  override readonly name = "BreakerOpenError";
  constructor(
    readonly breaker: string,
    /** Roughly when a trial call will be allowed; honoured by `retry`. */
    readonly retryAfterMs: number,
  ) {
    super(`circuit breaker "${breaker}" is open`);
  }
}

export interface Breaker<TArgs extends unknown[], TResult> {
  readonly name: string;
  readonly state: BreakerState;
  /** Calls the wrapped function through the breaker. Errors pass through unchanged. */
  fire(...args: TArgs): Promise<TResult>;
  /** Stops the rolling-window timers; the breaker rejects every call afterwards. */
  shutdown(): void;
}

/** Wraps `fn` in a breaker named after the downstream (one breaker per downstream, not per call). */
export function createBreaker<TArgs extends unknown[], TResult>(
  name: string,
  fn: (...args: TArgs) => Promise<TResult>,
  opts: BreakerOptions = {},
): Breaker<TArgs, TResult> {
  const resetTimeout = opts.resetTimeout ?? 10_000;
  const isFailure = opts.isFailure ?? (() => true);
  const cb = new CircuitBreaker<TArgs, TResult>(fn, {
    name,
    timeout: opts.timeout ?? false,
    errorThresholdPercentage: opts.errorThresholdPercentage ?? 50,
    resetTimeout,
    volumeThreshold: opts.volumeThreshold ?? 10,
    rollingCountTimeout: opts.rollingCountTimeout ?? 10_000,
    // opossum's filter means "do not count this one", the inverse of isFailure.
    errorFilter: (err: unknown) => !isFailure(err),
    enableSnapshots: false,
  });
  let openedAt = 0;
  const report = (state: BreakerState) => opts.onStateChange?.(state, name);
  cb.on("open", () => {
    openedAt = Date.now();
    report("open");
  });
  cb.on("halfOpen", () => report("half_open"));
  cb.on("close", () => report("closed"));
  report("closed");

  const stateOf = (): BreakerState => (cb.halfOpen ? "half_open" : cb.opened ? "open" : "closed");

  return {
    name,
    get state() {
      return stateOf();
    },
    async fire(...args) {
      try {
        return await cb.fire(...args);
      } catch (err) {
        if ((err as { code?: unknown } | null)?.code === "EOPENBREAKER") {
          throw new BreakerOpenError(name, Math.max(0, resetTimeout - (Date.now() - openedAt)));
        }
        throw err;
      }
    },
    shutdown: () => cb.shutdown(),
  };
}
