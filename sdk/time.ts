import type { Duration } from "@bufbuild/protobuf/wkt";

/** A protobuf Duration in milliseconds; undefined when unset or not positive. */
export function durationMs(d: Duration | undefined): number | undefined {
  if (!d) return undefined;
  const ms = Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6);
  return ms > 0 ? ms : undefined;
}

/** Resolves with `value` after `ms`, or as soon as `signal` aborts (never rejects). */
export function sleep<T>(ms: number, signal: AbortSignal | undefined, value: T): Promise<T> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve(value);
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
