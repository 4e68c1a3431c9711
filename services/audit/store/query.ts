import type pg from "pg";
import type { AuditRecord } from "../../../gen/codex/audit/v1/audit_record_pb.js";
import type { RecordFilter } from "../domain/filter.js";
import { toPgTimestamp } from "../domain/timestamps.js";
import { RECORD_COLUMNS, type RecordRow, recordFromRow } from "./record-row.js";

/** A WHERE clause with its positional parameters. */
interface Where {
  sql: string;
  params: unknown[];
}

/**
 * Translates a filter to SQL. Every value is a bound parameter. Time bounds compare
 * (occurred_at, occurred_at_subus) so they are exact to the nanosecond although timestamptz
 * stops at microseconds. Records without occurred_at match no time bound.
 */
export function whereClause(filter: RecordFilter): Where {
  const conds: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const eq: [string, string | undefined][] = [
    ["project_id", filter.projectId],
    ["aggregate_type", filter.aggregateType],
    ["aggregate_id", filter.aggregateId],
    ["actor_id", filter.actorId],
    ["correlation_id", filter.correlationId],
    ["event_id", filter.eventId],
  ];
  for (const [column, value] of eq) if (value !== undefined) conds.push(`${column} = ${p(value)}`);
  const types: string[] = [];
  if (filter.eventTypes) types.push(`event_type = ANY(${p(filter.eventTypes)}::text[])`);
  if (filter.eventNames) types.push(`event_name = ANY(${p(filter.eventNames)}::text[])`);
  if (types.length > 0) conds.push(`(${types.join(" OR ")})`);
  if (filter.startTime) {
    const t = toPgTimestamp(filter.startTime);
    const ts = p(t.text);
    conds.push(
      `(occurred_at > ${ts} OR (occurred_at = ${ts} AND occurred_at_subus >= ${p(t.subMicroNanos)}))`,
    );
  }
  if (filter.endTime) {
    const t = toPgTimestamp(filter.endTime);
    const ts = p(t.text);
    conds.push(
      `(occurred_at < ${ts} OR (occurred_at = ${ts} AND occurred_at_subus < ${p(t.subMicroNanos)}))`,
    );
  }
  if (filter.maxSequence !== undefined) conds.push(`sequence <= ${p(filter.maxSequence.toString())}`);
  return { sql: conds.length > 0 ? conds.join(" AND ") : "true", params };
}

/** Options of one keyset page. */
export interface PageOptions {
  /** Exclusive cursor: records after it in the chosen order. */
  after?: bigint | undefined;
  limit: number;
  newestFirst?: boolean;
}

/** One page of matching records in sequence order, using the (column, sequence) indexes. */
export async function findRecords(
  pool: pg.Pool,
  filter: RecordFilter,
  page: PageOptions,
): Promise<AuditRecord[]> {
  const where = whereClause(filter);
  const params = [...where.params];
  let sql = `SELECT ${RECORD_COLUMNS} FROM audit_records WHERE ${where.sql}`;
  if (page.after !== undefined) {
    params.push(page.after.toString());
    sql += ` AND sequence ${page.newestFirst ? "<" : ">"} $${params.length}`;
  }
  params.push(page.limit);
  sql += ` ORDER BY sequence ${page.newestFirst ? "DESC" : "ASC"} LIMIT $${params.length}`;
  const { rows } = await pool.query<RecordRow>(sql, params);
  return rows.map(recordFromRow);
}

/**
 * All matching records in ascending sequence order, fetched `batchSize` at a time with a keyset
 * cursor: memory stays bounded however long the range, no transaction is held open between
 * batches, and each batch uses the indexes. Stops early when the consumer stops iterating.
 */
export async function* scanRecords(
  pool: pg.Pool,
  filter: RecordFilter,
  opts: { batchSize: number; after?: bigint },
): AsyncGenerator<AuditRecord[]> {
  let after = opts.after;
  for (;;) {
    const batch = await findRecords(pool, filter, { after, limit: opts.batchSize });
    if (batch.length === 0) return;
    yield batch;
    if (batch.length < opts.batchSize) return;
    after = batch[batch.length - 1]?.sequence;
  }
}

/** The record at `sequence`, if present. */
export async function getRecord(pool: pg.Pool, sequence: bigint): Promise<AuditRecord | undefined> {
  const { rows } = await pool.query<RecordRow>(
    `SELECT ${RECORD_COLUMNS} FROM audit_records WHERE sequence = $1`,
    [sequence.toString()],
  );
  const row = rows[0];
  return row === undefined ? undefined : recordFromRow(row);
}

/** Records with sequence in [from, to], ascending, `batchSize` at a time (for VerifyChain). */
export async function* scanRange(
  pool: pg.Pool,
  from: bigint,
  to: bigint,
  batchSize: number,
): AsyncGenerator<AuditRecord[]> {
  let next = from;
  while (next <= to) {
    const { rows } = await pool.query<RecordRow>(
      `SELECT ${RECORD_COLUMNS} FROM audit_records WHERE sequence >= $1 AND sequence <= $2
       ORDER BY sequence LIMIT $3`,
      [next.toString(), to.toString(), batchSize],
    );
    if (rows.length === 0) return;
    const batch = rows.map(recordFromRow);
    yield batch;
    next = (batch[batch.length - 1]?.sequence ?? to) + 1n;
  }
}
