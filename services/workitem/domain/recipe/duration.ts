/**
 * Step timeouts as authors write them: `"30s"`, `"5m"`, `"1h30m"`, or a bare integer of
 * seconds. Deliberately narrower than Go's `time.ParseDuration` (no fractions, no `ms`):
 * a timeout is a coarse budget, and one obvious spelling per value keeps recipes readable.
 */

const DURATION = /^(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,9})s)?$/;

export type DurationResult =
  | { readonly ok: true; readonly ms: number }
  | { readonly ok: false; readonly reason: string };

const FORMAT = 'use a duration like "30s", "5m" or "1h30m", or an integer number of seconds';

/** Parses a timeout given as YAML resolved it (string or number) and bounds it to `(0, maxMs]`. */
export function parseTimeout(value: unknown, maxMs: number): DurationResult {
  let ms: number;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value))
      return { ok: false, reason: `${value} is not a whole number of seconds` };
    ms = value * 1000;
  } else if (typeof value === "string") {
    const match = DURATION.exec(value);
    if (!match || value === "")
      return { ok: false, reason: `${JSON.stringify(value.slice(0, 40))}: ${FORMAT}` };
    const [, h = "0", m = "0", s = "0"] = match;
    ms = ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000;
  } else {
    return { ok: false, reason: FORMAT };
  }
  if (ms <= 0) return { ok: false, reason: "must be longer than zero" };
  if (ms > maxMs) return { ok: false, reason: `must be at most ${formatDuration(maxMs)}` };
  return { ok: true, ms };
}

/** Renders milliseconds in the same notation the parser accepts (whole seconds). */
export function formatDuration(ms: number): string {
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const text = `${h ? `${h}h` : ""}${m ? `${m}m` : ""}${s ? `${s}s` : ""}`;
  return text || "0s";
}
