/**
 * The run_logs and log_cursors tables: lines with dense offsets, and per run the dedupe
 * watermark, next offset and unfinished lines (see domain/log-lines.ts).
 */
import type pg from "pg";
import type { LogCursor, LogLine, Partial } from "../domain/log-lines.js";
import { bigints } from "./batch-support.js";
import type { Db } from "./runs.js";

interface CursorRow {
  run_id: string;
  last_seq: bigint;
  next_offset: bigint;
  partials: Record<string, Partial>;
}

/** Cursors of runs, locked for the transaction; runs without one are absent. */
export async function lockCursors(
  client: pg.PoolClient,
  runIds: readonly string[],
  onlyWithPartials = false,
) {
  const { rows } = await client.query<CursorRow>(
    `SELECT * FROM log_cursors WHERE run_id = ANY($1::uuid[]) ${onlyWithPartials ? "AND partials <> '{}'::jsonb" : ""}
     ORDER BY run_id FOR UPDATE`,
    [runIds],
  );
  return new Map<string, LogCursor>(
    rows.map((r) => [r.run_id, { lastSeq: r.last_seq, nextOffset: r.next_offset, partials: r.partials }]),
  );
}

/** Stores lines of many runs in one statement. */
export async function insertLines(client: pg.PoolClient, lines: readonly (LogLine & { runId: string })[]) {
  if (lines.length === 0) return;
  await client.query(
    `INSERT INTO run_logs (run_id, off, stream, step, text, time)
     SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::smallint[], $4::int[], $5::text[], $6::timestamptz[])`,
    [
      lines.map((l) => l.runId),
      bigints(lines.map((l) => l.offset)),
      lines.map((l) => l.stream),
      lines.map((l) => l.step),
      lines.map((l) => l.text),
      lines.map((l) => new Date(l.timeMs)),
    ],
  );
}

/** Writes cursors of many runs in one statement. */
export async function saveCursors(client: pg.PoolClient, cursors: ReadonlyMap<string, LogCursor>) {
  if (cursors.size === 0) return;
  const ids = [...cursors.keys()];
  const values = [...cursors.values()];
  await client.query(
    `INSERT INTO log_cursors (run_id, last_seq, next_offset, partials)
     SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::jsonb[])
     ON CONFLICT (run_id) DO UPDATE SET last_seq = EXCLUDED.last_seq, next_offset = EXCLUDED.next_offset,
       partials = EXCLUDED.partials`,
    [
      ids,
      bigints(values.map((c) => c.lastSeq)),
      bigints(values.map((c) => c.nextOffset)),
      values.map((c) => JSON.stringify(c.partials)),
    ],
  );
}

/** A stored line. */
export interface LineRow {
  off: bigint;
  stream: number;
  step: number | null;
  text: string;
  time: Date;
}

/** Which lines to read. */
export interface LineFilter {
  streams: number[];
  step: number | undefined;
  contains: string;
}

/**
 * Up to `limit` matching lines from `offset` on, and how far the scan went: when fewer than
 * `limit` lines match, every stored line was examined.
 */
export async function readLines(
  db: Db,
  runId: string,
  offset: bigint,
  limit: number,
  f: LineFilter,
): Promise<LineRow[]> {
  const args: unknown[] = [runId, offset.toString(), limit];
  const where = ["run_id = $1", "off >= $2"];
  if (f.streams.length > 0) {
    args.push(f.streams);
    where.push(`stream = ANY($${args.length}::smallint[])`);
  }
  if (f.step !== undefined) {
    args.push(f.step);
    where.push(`step = $${args.length}`);
  }
  if (f.contains !== "") {
    args.push(f.contains);
    where.push(`strpos(text, $${args.length}) > 0`);
  }
  const { rows } = await db.query<LineRow>(
    `SELECT off, stream, step, text, time FROM run_logs WHERE ${where.join(" AND ")} ORDER BY off LIMIT $3`,
    args,
  );
  return rows;
}

/** Number of stored lines of a run (the next offset). */
export async function lineCount(db: Db, runId: string): Promise<bigint> {
  const { rows } = await db.query<{ next_offset: bigint }>(
    "SELECT next_offset FROM log_cursors WHERE run_id = $1",
    [runId],
  );
  return rows[0]?.next_offset ?? 0n;
}
