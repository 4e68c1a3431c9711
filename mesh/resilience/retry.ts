/**
 * Retry with capped exponential backoff and FULL jitter.
 *
 * Why full jitter: after an outage every client fails at about the same instant; deterministic or
 * "equal" jitter keeps them in lock-step and the recovering server is hit by synchronised waves.
 * Drawing each sleep uniformly from [0, min(cap, base·2^attempt)) spreads them out and, per AWS's
 * analysis ("Exponential Backoff And Jitter"), finishes the work with the least total load.
 *
 * Retry only what is safe to repeat: idempotent calls, or calls carrying an idempotency key.
 * The caller decides through `isRetryable`; this module never guesses.
 */

/**
 * The sleep before retry number `attempt` (0 for the first retry): uniform in
 * [0, min(capMs, baseMs·2^attempt)). Pure given `random`, so tests can pin it.
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number = Math.random,
) {
  // 2^1024 is Infinity and 0·Infinity is NaN: clamp the exponent, the cap decides long before.
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 1000));
  return random() * Math.max(0, ceiling);
}

/** What `onRetry` learns before each sleep. */
export interface RetryEvent {
  /** 1-based number of the attempt that just failed. */
  attempt: number;
  delayMs: number;
  error: unknown;
  /** True when the delay came from the server (`retryAfterMs`) instead of backoff. */
  serverDelay: boolean;
}

export interface RetryOptions {
  /** Total attempts including the first; 1 means no retry. */
  maxAttempts: number;
  baseMs: number;
  capMs: number;
  /** Only errors this accepts are retried; anything else is rethrown at once. */
  isRetryable(err: unknown): boolean;
  /** Aborting stops waiting and rejects with the signal's reason. */
  signal?: AbortSignal;
  onRetry?(event: RetryEvent): void;
  /** Injected for tests; defaults to Math.random. */
  random?: () => number;
}

/**
 * A delay the server asked for (gRPC RetryInfo, HTTP Retry-After), exposed by errors as a
 * `retryAfterMs` property (own or getter, as on mesh `ServiceError`).
 */
function serverRetryDelay(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const v: unknown = (err as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : undefined;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Calls `fn` until it succeeds, fails with a non-retryable error, or `maxAttempts` is reached;
 * then rethrows the last error unchanged (callers and error mappers see the real cause).
 * A server-provided `retryAfterMs` replaces the computed backoff: the server knows its own load.
 * `fn` receives the 1-based attempt number (useful for logs and attempt headers).
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const maxAttempts = Math.max(1, Math.floor(opts.maxAttempts));
  for (let attempt = 1; ; attempt++) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= maxAttempts || !opts.isRetryable(err)) throw err;
      const server = serverRetryDelay(err);
      const delayMs = server ?? backoffDelay(attempt - 1, opts.baseMs, opts.capMs, opts.random);
      opts.onRetry?.({ attempt, delayMs, error: err, serverDelay: server !== undefined });
      await sleep(delayMs, opts.signal);
    }
  }
}
