import type { Effect } from "../store/effects.js";
import type { TaskRow } from "../store/tasks.js";

/**
 * The quota release a task owes when it leaves the queue, if any: the reservation of its
 * current run (consumed: the run happened), or a reservation made for it before any run (the
 * saga's "reserve_quota"), refunded because it never ran.
 */
export function releaseOwed(t: TaskRow, ran: boolean): Effect | undefined {
  if (t.reservationHeld && t.reservationKey !== "") {
    return { kind: "release", projectId: t.projectId, key: t.reservationKey, consumed: ran };
  }
  if (t.attempt === 0 && t.initialReservationKey !== "") {
    return { kind: "release", projectId: t.projectId, key: t.initialReservationKey, consumed: false };
  }
  return undefined;
}

/** The reservation key a claim of `attempt` uses: the saga's for the first run, else per attempt. */
export function reservationKeyFor(t: Pick<TaskRow, "id" | "initialReservationKey">, attempt: number): string {
  return attempt === 1 && t.initialReservationKey !== "" ? t.initialReservationKey : `${t.id}/${attempt}`;
}
