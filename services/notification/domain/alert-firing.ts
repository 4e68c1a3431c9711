import type { AlertThresholds } from "./alert-rules.js";

/**
 * When an alert rule fires, decided so that the order in which occurrences are processed does not
 * matter. Pure; store/alerts.ts runs it under a per-(rule, key) row lock, in the transaction that
 * records a new occurrence, over the occurrences and firings already stored for the key.
 *
 * Times are event times (occurred_at), in milliseconds. A window is a half-open interval
 * (e − window, e]: "threshold occurrences within the window" means their span is shorter than the
 * window. The rule *trips at* e, an occurrence time, when (e − window, e] holds ≥ threshold
 * occurrences. A firing is stamped with the trip it fired for, never with the processing time.
 *
 * Processing an occurrence at t looks at every window containing t (ends e in [t, t + window)), so
 * an occurrence that arrives late still completes a window with occurrences that arrived earlier
 * but happened later. (Counting only up to t made the outcome depend on processing order: a
 * reversed stream never fired, and a shuffled one could fire with a count above the threshold.)
 *
 * Cooldown, in event time and in both directions: a trip is covered by any firing stamped less
 * than `cooldown` before or after it, or at the same time (so a zero cooldown fires once per
 * trip). A new occurrence fires at the first of its trips, in time order, that no firing covers;
 * stamps therefore stay ≥ cooldown apart whatever the order of processing, redeliveries and
 * replicas. One occurrence fires at most once: one delivery per event and subscription.
 *
 * A trip covered only by a firing stamped *after* it means the burst's occurrences came out of
 * order; that firing's stamp moves back to the trip, where event-time order would have put it.
 * Hence a burst — occurrences whose trips all lie within one cooldown of the first — yields the
 * same single firing in every processing order: stamped at its first trip (the time of the
 * threshold-th occurrence of its first full window), reporting `count` = threshold (no window
 * can hold more before the first firing, and each occurrence adds one). Bursts separated by at
 * least max(window, cooldown) never see each other's occurrences or firings, so each is decided
 * alone. Closer bursts decided out of order may fire fewer times than event-time order would (a
 * stamp moved back can uncover a later trip nothing re-examines), never more: the spacing holds.
 */

/** A rule tripping: the stamp and the number of occurrences in the window ending at it. */
export interface Trip {
  /** Event time the rule tripped at: the last occurrence of the full window. */
  atMs: number;
  /** Occurrences in (atMs − window, atMs] at decision time. */
  count: number;
}

/** What recording one occurrence does to the key's firings. */
export interface AlertDecision {
  /** The firing to store and deliver, if any. */
  fire: Trip | undefined;
  /** Existing firings whose stamp moves back to an earlier trip, applied in order. */
  restamps: { fromMs: number; toMs: number }[];
}

/**
 * Trips of the windows containing `newMs`, in time order.
 *
 * @param occurrencesMs the key's stored occurrence times, the new one included, any order; only
 *   those in (newMs − window, newMs + window) matter.
 */
export function tripsOf(
  rule: Pick<AlertThresholds, "threshold" | "windowMs">,
  occurrencesMs: readonly number[],
  newMs: number,
): Trip[] {
  const times = [...occurrencesMs].sort((a, b) => a - b);
  const trips: Trip[] = [];
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    const end = times[hi] as number;
    if (times[hi + 1] === end) continue; // a window ending at `end` holds every occurrence at `end`
    while ((times[lo] as number) <= end - rule.windowMs) lo++;
    if (end < newMs) continue;
    if (end >= newMs + rule.windowMs) break;
    const count = hi - lo + 1;
    if (count >= rule.threshold) trips.push({ atMs: end, count });
  }
  return trips;
}

/**
 * Decides what recording the occurrence at `newMs` does (see the module comment).
 *
 * @param firingsMs stamps of the key's stored firings; only those in
 *   (newMs − cooldown, newMs + window + cooldown) matter.
 */
export function decideAlert(
  rule: AlertThresholds,
  occurrencesMs: readonly number[],
  firingsMs: readonly number[],
  newMs: number,
): AlertDecision {
  const firings = [...firingsMs];
  const restamps: AlertDecision["restamps"] = [];
  for (const trip of tripsOf(rule, occurrencesMs, newMs)) {
    const near = firings.filter((f) => f === trip.atMs || Math.abs(f - trip.atMs) < rule.cooldownMs);
    if (near.length === 0) return { fire: trip, restamps };
    const only = near.length === 1 ? (near[0] as number) : undefined;
    if (only !== undefined && only > trip.atMs) {
      firings[firings.indexOf(only)] = trip.atMs;
      restamps.push({ fromMs: only, toMs: trip.atMs });
    }
  }
  return { fire: undefined, restamps };
}
