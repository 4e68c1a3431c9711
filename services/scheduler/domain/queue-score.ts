/**
 * Redis sorted-set score of a READY task: priority first (higher first), then ready time
 * (older first), in one exact double. ZPOPMIN then yields queue order.
 *
 * (1000 - priority) is 0..2000 and ready times in ms stay below 2^42 until 2109, so the score
 * stays below 2001 * 2^42 < 2^53: every score is an exact integer and no two orders collide.
 */
const TIME_SPAN = 2 ** 42;

export const PRIORITY_MIN = -1000;
export const PRIORITY_MAX = 1000;

export function readyScore(priority: number, readyTimeMs: number): number {
  const p = Math.min(PRIORITY_MAX, Math.max(PRIORITY_MIN, Math.trunc(priority)));
  return (PRIORITY_MAX - p) * TIME_SPAN + Math.min(Math.max(0, Math.trunc(readyTimeMs)), TIME_SPAN - 1);
}
