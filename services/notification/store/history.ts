import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import {
  type DeadLetter,
  DeadLetterSchema,
  DeadLetterState,
  type Delivery,
  DeliveryOutcome,
  DeliverySchema,
} from "../../../gen/codex/notification/v1/delivery_pb.js";

type Db = pg.Pool | pg.ClientBase;

export interface AttemptRow {
  seq: bigint;
  id: string;
  delivery_key: string;
  subscription_id: string;
  event_id: string;
  event_type: string;
  project_id: string;
  attempt: number;
  outcome: "pending" | "succeeded" | "failed" | "dead_lettered";
  status_code: number;
  latency_ms: number | null;
  error: string;
  next_attempt_time: Date | null;
  attempt_time: Date;
  test: boolean;
}

/** The column value of each enum value: the inverse of a column -> enum table. */
function invert<K extends string>(table: Record<K, number>): Record<number, K> {
  return Object.fromEntries(Object.entries(table).map(([k, v]) => [v, k])) as Record<number, K>;
}

const OUTCOME = {
  pending: DeliveryOutcome.PENDING,
  succeeded: DeliveryOutcome.SUCCEEDED,
  failed: DeliveryOutcome.FAILED,
  dead_lettered: DeliveryOutcome.DEAD_LETTERED,
} as const;

export const OUTCOME_NAME = invert(OUTCOME);

export function attemptToProto(r: AttemptRow): Delivery {
  return create(DeliverySchema, {
    id: r.id,
    subscriptionId: r.subscription_id,
    eventId: r.event_id,
    eventType: r.event_type,
    projectId: r.project_id,
    deliveryKey: r.delivery_key,
    attempt: r.attempt,
    outcome: OUTCOME[r.outcome],
    statusCode: r.status_code,
    ...(r.latency_ms === null
      ? {}
      : {
          latency: { seconds: BigInt(Math.floor(r.latency_ms / 1000)), nanos: (r.latency_ms % 1000) * 1e6 },
        }),
    error: r.error,
    ...(r.next_attempt_time ? { nextAttemptTime: timestampFromDate(r.next_attempt_time) } : {}),
    attemptTime: timestampFromDate(r.attempt_time),
    test: r.test,
  });
}

/** Filters of ListDeliveries, already authorised: `projects` bounds what the caller may see. */
export interface AttemptFilter {
  subscriptionId?: string | undefined;
  projects: "all" | string[];
  outcome?: AttemptRow["outcome"] | undefined;
  eventId?: string | undefined;
  projectId?: string | undefined;
  start?: Date | undefined;
  end?: Date | undefined;
  beforeSeq?: bigint | undefined;
  limit: number;
}

/**
 * Visibility follows the subscription's project, not the event's: deliveries of an all-project
 * subscription are an admin's, even for events of a project the caller belongs to.
 */
function visibleTo(projectsParam: string): string {
  return `subscription_id IN (SELECT id FROM subscriptions WHERE project_id = ANY(${projectsParam}::text[]))`;
}

function builder() {
  const params: unknown[] = [];
  return {
    params,
    p(v: unknown) {
      params.push(v);
      return `$${params.length}`;
    },
  };
}

/** Attempts newest first (by creation order, which never changes under a page token). */
export async function listAttempts(db: Db, f: AttemptFilter): Promise<AttemptRow[]> {
  const { params, p } = builder();
  const where: string[] = [];
  if (f.subscriptionId !== undefined) where.push(`subscription_id = ${p(f.subscriptionId)}`);
  if (f.projects !== "all") where.push(visibleTo(p(f.projects)));
  if (f.outcome !== undefined) where.push(`outcome = ${p(f.outcome)}`);
  if (f.eventId) where.push(`event_id = ${p(f.eventId)}`);
  if (f.projectId) where.push(`project_id = ${p(f.projectId)}`);
  if (f.start) where.push(`attempt_time >= ${p(f.start)}`);
  if (f.end) where.push(`attempt_time < ${p(f.end)}`);
  if (f.beforeSeq !== undefined) where.push(`seq < ${p(f.beforeSeq)}`);
  const { rows } = await db.query<AttemptRow>(
    `SELECT * FROM delivery_attempts ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
     ORDER BY seq DESC LIMIT ${p(f.limit)}`,
    params,
  );
  return rows;
}

/** Records the single attempt of a TestSubscription call (never retried or dead-lettered). */
export async function insertTestAttempt(
  db: Db,
  a: Omit<AttemptRow, "seq" | "id" | "attempt" | "next_attempt_time" | "attempt_time" | "test">,
): Promise<AttemptRow> {
  const { rows } = await db.query<AttemptRow>(
    `INSERT INTO delivery_attempts (id, delivery_key, subscription_id, event_id, event_type, project_id, attempt,
       outcome, status_code, latency_ms, error, test)
     VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $10, true) RETURNING *`,
    [
      randomUUID(),
      randomUUID(),
      a.subscription_id,
      a.event_id,
      a.event_type,
      a.project_id,
      a.outcome,
      a.status_code,
      a.latency_ms,
      a.error,
    ],
  );
  return rows[0]!;
}

/** Test attempts of a subscription since `since`, for the rate limit. */
export async function countTestAttempts(
  db: Db,
  subscriptionId: string,
  since: Date,
): Promise<{ n: number; oldest: Date | null }> {
  const { rows } = await db.query<{ n: number; oldest: Date | null }>(
    `SELECT count(*)::int AS n, min(attempt_time) AS oldest FROM delivery_attempts
     WHERE subscription_id = $1 AND test AND attempt_time >= $2`,
    [subscriptionId, since],
  );
  return rows[0] ?? { n: 0, oldest: null };
}

export interface DeadLetterRow {
  id: string;
  delivery_key: string;
  subscription_id: string;
  event_id: string;
  event_type: string;
  project_id: string;
  attempts: number;
  last_status_code: number;
  last_error: string;
  state: "open" | "redelivering" | "resolved";
  dead_letter_time: Date;
  redeliver_time: Date | null;
  redelivered_by: string;
}

const DL_STATE = {
  open: DeadLetterState.OPEN,
  redelivering: DeadLetterState.REDELIVERING,
  resolved: DeadLetterState.RESOLVED,
} as const;

export const DL_STATE_NAME = invert(DL_STATE);

export function deadLetterToProto(r: DeadLetterRow): DeadLetter {
  return create(DeadLetterSchema, {
    id: r.id,
    subscriptionId: r.subscription_id,
    eventId: r.event_id,
    eventType: r.event_type,
    projectId: r.project_id,
    deliveryKey: r.delivery_key,
    attempts: r.attempts,
    lastStatusCode: r.last_status_code,
    lastError: r.last_error,
    state: DL_STATE[r.state],
    deadLetterTime: timestampFromDate(r.dead_letter_time),
    ...(r.redeliver_time ? { redeliverTime: timestampFromDate(r.redeliver_time) } : {}),
    redeliveredBy: r.redelivered_by,
  });
}

export interface DeadLetterFilter {
  subscriptionId?: string | undefined;
  projects: "all" | string[];
  state?: DeadLetterRow["state"] | undefined;
  projectId?: string | undefined;
  /** Keyset: (dead_letter_time, id) of the last row of the previous page. */
  before?: { time: Date; id: string } | undefined;
  limit: number;
}

/** Dead letters, most recently dead-lettered first. */
export async function listDeadLetters(db: Db, f: DeadLetterFilter): Promise<DeadLetterRow[]> {
  const { params, p } = builder();
  const where: string[] = [];
  if (f.subscriptionId !== undefined) where.push(`subscription_id = ${p(f.subscriptionId)}`);
  if (f.projects !== "all") where.push(visibleTo(p(f.projects)));
  if (f.state !== undefined) where.push(`state = ${p(f.state)}`);
  if (f.projectId) where.push(`project_id = ${p(f.projectId)}`);
  if (f.before) where.push(`(dead_letter_time, id) < (${p(f.before.time)}, ${p(f.before.id)}::uuid)`);
  const { rows } = await db.query<DeadLetterRow>(
    `SELECT * FROM dead_letters ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
     ORDER BY dead_letter_time DESC, id DESC LIMIT ${p(f.limit)}`,
    params,
  );
  return rows;
}
