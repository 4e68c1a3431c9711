import type pg from "pg";
import { NOTIFICATION_DELIVERED, OWN_EVENT_TYPES, shortName } from "../domain/matching.js";
import {
  recordFromRow,
  type StoredAlertRule,
  type StoredChannel,
  type SubscriptionRecord,
  type SubscriptionRow,
} from "./subscription-record.js";

type Db = pg.Pool | pg.ClientBase;

/** The mutable content of a subscription, as handlers build it after validation. */
export interface SubscriptionWrite {
  displayName: string;
  eventTypes: string[];
  channel: StoredChannel;
  credential: Buffer | null;
  template: string;
  alertRule: StoredAlertRule | null;
  enabled: boolean;
}

function channelJson(c: StoredChannel): Record<string, unknown> {
  const { type: _type, ...rest } = c;
  return rest;
}

export async function insertSubscription(
  db: Db,
  id: string,
  projectId: string,
  createdBy: string,
  w: SubscriptionWrite,
): Promise<SubscriptionRecord> {
  const { rows } = await db.query<SubscriptionRow>(
    `INSERT INTO subscriptions (id, project_id, display_name, event_types, channel_type, channel, credential,
       template, alert_rule, enabled, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *`,
    [
      id,
      projectId,
      w.displayName,
      w.eventTypes,
      w.channel.type,
      channelJson(w.channel),
      w.credential,
      w.template,
      w.alertRule,
      w.enabled,
      createdBy,
    ],
  );
  return recordFromRow(rows[0]!);
}

/** A subscription by id; deleted ones only when asked (their history stays readable). */
export async function getSubscription(
  db: Db,
  id: string,
  opts: { includeDeleted?: boolean; forUpdate?: boolean } = {},
): Promise<SubscriptionRecord | undefined> {
  const { rows } = await db.query<SubscriptionRow>(
    `SELECT * FROM subscriptions WHERE id = $1 ${opts.includeDeleted ? "" : "AND delete_time IS NULL"}
     ${opts.forUpdate ? "FOR UPDATE" : ""}`,
    [id],
  );
  return rows[0] === undefined ? undefined : recordFromRow(rows[0]);
}

/** Replaces the mutable content and bumps the version. */
export async function updateSubscription(
  db: Db,
  id: string,
  w: SubscriptionWrite,
): Promise<SubscriptionRecord> {
  const { rows } = await db.query<SubscriptionRow>(
    `UPDATE subscriptions SET display_name = $2, event_types = $3, channel_type = $4, channel = $5,
       credential = $6, template = $7, alert_rule = $8, enabled = $9, update_time = now(), version = version + 1
     WHERE id = $1 AND delete_time IS NULL RETURNING *`,
    [
      id,
      w.displayName,
      w.eventTypes,
      w.channel.type,
      channelJson(w.channel),
      w.credential,
      w.template,
      w.alertRule,
      w.enabled,
    ],
  );
  return recordFromRow(rows[0]!);
}

/**
 * Soft-deletes a subscription, erases its sealed credential (nothing may send with it any more)
 * and cancels its pending deliveries; returns how many were cancelled.
 */
export async function deleteSubscription(db: Db, id: string): Promise<number> {
  await db.query(
    `UPDATE subscriptions SET delete_time = now(), update_time = now(), credential = NULL, version = version + 1
     WHERE id = $1`,
    [id],
  );
  // The claim is left in place: a worker whose request is in flight still records what it sent
  // (recordAttempt accepts a cancelled delivery from its claim holder), so the history shows
  // every request that went out, and no further attempt is made.
  const { rows } = await db.query<{ id: string }>(
    `UPDATE deliveries SET state = 'cancelled', update_time = now()
     WHERE subscription_id = $1 AND state = 'pending' RETURNING id`,
    [id],
  );
  if (rows.length > 0) {
    await db.query(
      `DELETE FROM delivery_attempts WHERE delivery_key = ANY($1::uuid[]) AND outcome = 'pending'`,
      [rows.map((r) => r.id)],
    );
  }
  return rows.length;
}

export async function countLiveSubscriptions(db: Db, projectId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM subscriptions WHERE project_id = $1 AND delete_time IS NULL",
    [projectId],
  );
  return rows[0]?.n ?? 0;
}

/** Filters of ListSubscriptions, already authorised. */
export interface SubscriptionFilter {
  /** Projects the caller may read ("all" for admins); "" in the list = all-project subscriptions. */
  projects: "all" | string[];
  enabled?: boolean | undefined;
  channelType?: StoredChannel["type"] | undefined;
  /** Full event type name the patterns must match. */
  eventType?: string | undefined;
  /** Keyset: only rows with seq below this. */
  beforeSeq?: bigint | undefined;
  limit: number;
}

export async function listSubscriptions(db: Db, f: SubscriptionFilter): Promise<SubscriptionRecord[]> {
  const where = ["delete_time IS NULL"];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (f.projects !== "all") where.push(`project_id = ANY(${p(f.projects)}::text[])`);
  if (f.enabled !== undefined) where.push(`enabled = ${p(f.enabled)}`);
  if (f.channelType !== undefined) where.push(`channel_type = ${p(f.channelType)}`);
  if (f.eventType !== undefined && f.eventType !== "") {
    const full = p(f.eventType);
    const short = p(shortName(f.eventType));
    if (f.eventType === NOTIFICATION_DELIVERED) where.push("false");
    else if (OWN_EVENT_TYPES.has(f.eventType)) {
      where.push(`EXISTS (SELECT 1 FROM unnest(event_types) pat WHERE pat IN (${full}, ${short}))`);
    } else {
      where.push(
        `EXISTS (SELECT 1 FROM unnest(event_types) pat WHERE
           (CASE WHEN strpos(pat, '.') = 0 THEN ${short} ELSE ${full} END)
             LIKE replace(replace(pat, '_', '\\_'), '*', '%'))`,
      );
    }
  }
  if (f.beforeSeq !== undefined) where.push(`seq < ${p(f.beforeSeq)}`);
  const { rows } = await db.query<SubscriptionRow>(
    `SELECT * FROM subscriptions WHERE ${where.join(" AND ")} ORDER BY seq DESC LIMIT ${p(f.limit)}`,
    params,
  );
  return rows.map(recordFromRow);
}
