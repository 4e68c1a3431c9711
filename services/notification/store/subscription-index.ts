import type pg from "pg";
import { type IndexedSubscription, SubscriptionIndex } from "../domain/subscription-index.js";
import type { StoredAlertRule } from "./subscription-record.js";

type Db = pg.Pool | pg.ClientBase;

/**
 * Loads the live, enabled subscriptions together with the change count, in one statement (one
 * snapshot), so the index holds exactly the rows as of its `changeCount`.
 */
export async function loadSubscriptionIndex(db: Db): Promise<SubscriptionIndex> {
  const { rows } = await db.query<{
    n: bigint;
    seq: bigint | null;
    id: string | null;
    project_id: string;
    event_types: string[];
    alert_rule: StoredAlertRule | null;
  }>(
    `SELECT c.n, s.seq, s.id, s.project_id, s.event_types, s.alert_rule
     FROM subscription_changes c
     LEFT JOIN subscriptions s ON s.delete_time IS NULL AND s.enabled`,
  );
  const first = rows[0];
  if (first === undefined) throw new Error("subscription_changes has no row");
  const subs: IndexedSubscription[] = [];
  for (const r of rows) {
    if (r.id === null || r.seq === null) continue; // no subscriptions: the one row of the left join
    subs.push({
      seq: r.seq,
      id: r.id,
      projectId: r.project_id,
      eventTypes: r.event_types,
      alertRule: r.alert_rule,
    });
  }
  return new SubscriptionIndex(first.n, subs);
}

/** The number of changes made to `subscriptions` so far (committed ones, as of this statement). */
export async function readChangeCount(db: Db): Promise<bigint> {
  const { rows } = await db.query<{ n: bigint }>("SELECT n FROM subscription_changes");
  const n = rows[0]?.n;
  if (n === undefined) throw new Error("subscription_changes has no row");
  return n;
}
