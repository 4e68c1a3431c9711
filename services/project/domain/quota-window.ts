/**
 * Quota window arithmetic. The only window in v1 is the UTC calendar day: counts reset at
 * 00:00:00Z, so every replica agrees on the window without coordination.
 */
const DAY_MS = 86_400_000;

export interface Window {
  start: Date;
  reset: Date;
}

/** The daily UTC window containing `now`. */
export function dailyUtcWindow(now: Date): Window {
  const start = Math.floor(now.getTime() / DAY_MS) * DAY_MS;
  return { start: new Date(start), reset: new Date(start + DAY_MS) };
}

/** Milliseconds from `now` until the window resets (at least 1, so a retry never hits the same instant). */
export function msUntilReset(now: Date, window: Window): number {
  return Math.max(1, window.reset.getTime() - now.getTime());
}

/** Limits in force: a project's own, or the configured defaults while it has none. */
export interface Limits {
  runsPerDay: number;
  maxConcurrentRuns: number;
}

/** Usage counted in the current window (HELD, CONSUMED and EXPIRED count; REFUNDED does not). */
export interface Usage {
  runsUsed: number;
  concurrentInUse: number;
}

export type LimitName = "runs_per_day" | "max_concurrent_runs";

/**
 * Which limit, if any, refuses one more reservation. `runs_per_day` wins when both are
 * reached: a freed slot would not help, so the caller should wait for the reset. A limit
 * of 0 means unlimited.
 */
export function exceededLimit(limits: Limits, usage: Usage): LimitName | undefined {
  if (limits.runsPerDay > 0 && usage.runsUsed >= limits.runsPerDay) return "runs_per_day";
  if (limits.maxConcurrentRuns > 0 && usage.concurrentInUse >= limits.maxConcurrentRuns) {
    return "max_concurrent_runs";
  }
  return undefined;
}

/** Runs left in the window; -1 when unlimited (quota.proto QuotaUsage). */
export function runsRemaining(limits: Limits, usage: Usage): number {
  if (limits.runsPerDay === 0) return -1;
  return Math.max(0, limits.runsPerDay - usage.runsUsed);
}
