import type pg from "pg";
import type { AuditRecord } from "../../../gen/codex/audit/v1/audit_record_pb.js";
import { computeHash } from "../domain/chain.js";
import { nowTimestamp } from "../domain/timestamps.js";
import { batchParams, INSERT_BATCH_SQL } from "./record-row.js";

/** What an append did: recorded the event at `sequence`, or found it already recorded there. */
export type AppendResult = { duplicate: boolean; sequence: bigint };

/**
 * A batch takes four round trips: BEGIN with the head lock, the duplicate query, the insert,
 * and the head update with COMMIT. The first and last are simple-protocol query strings holding
 * two statements each (nothing from an event is spliced into them: the sequence is a bigint and
 * the hash our own hex); the others are named prepared statements, parsed and planned once per
 * pooled connection. Socket writes, one per query, were most of the intake's CPU.
 */
const SQL = {
  beginAndLockHead: "BEGIN; SELECT last_sequence, last_hash FROM chain_head FOR UPDATE",
  findRecorded: {
    name: "audit_find_recorded",
    text: "SELECT event_id, sequence FROM audit_records WHERE event_id = ANY($1::text[])",
  },
  insert: { name: "audit_insert_batch", text: INSERT_BATCH_SQL },
  advanceHeadAndCommit: (sequence: bigint, hash: string): string => {
    if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error(`not a chain hash: ${JSON.stringify(hash)}`);
    return `UPDATE chain_head SET last_sequence = ${sequence.toString()}, last_hash = '${hash}'; COMMIT`;
  },
} as const;

type HeadRow = { last_sequence: bigint; last_hash: string };

/**
 * Appends events to the trail, exactly once each, in the order given, in one transaction.
 *
 * Why this shape: the chain must be linear (each record links to the one before it) and the
 * sequence gapless, whatever the number of consumers and replicas. The transaction locks the
 * single chain_head row FOR UPDATE first, so appends are serialized; the duplicate check runs
 * under that lock, so two deliveries of one event racing on two replicas cannot both pass it
 * (event_id is UNIQUE as a last line of defence). The head advances in the same transaction
 * as the insert: a failure rolls both back and leaves no gap.
 *
 * Why batches: an append costs a handful of round trips and one commit whatever it holds, so
 * the consumer appends what arrived together in one go (one lock, one duplicate query, one
 * multi-row insert, one head update). The hashes are chained in memory in the given order. An
 * event id appearing twice in `drafts` is recorded once; the repeat reports the first's
 * sequence as a duplicate. All new records share recorded_at: the append they were written in.
 *
 * `drafts` are records without chain position and recorded_at (see draftFromEnvelope); the
 * results are in the same order.
 */
export async function appendRecords(
  pool: pg.Pool,
  drafts: readonly AuditRecord[],
  nowMs?: number,
): Promise<AppendResult[]> {
  if (drafts.length === 0) return [];
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    const [, head] = (await client.query(SQL.beginAndLockHead)) as unknown as [
      unknown,
      pg.QueryResult<HeadRow>,
    ];
    const current = head.rows[0];
    if (current === undefined) throw new Error("audit chain_head row is missing");
    const ids = drafts.map((d) => d.eventId);
    const existing = await client.query<{ event_id: string; sequence: bigint }>({
      ...SQL.findRecorded,
      values: [ids],
    });
    const recorded = new Map<string, bigint>();
    for (const row of existing.rows) recorded.set(row.event_id, BigInt(row.sequence));

    const recordedAt = nowTimestamp(nowMs);
    let sequence = BigInt(current.last_sequence);
    let prevHash = current.last_hash;
    const fresh: AuditRecord[] = [];
    const results = drafts.map((draft): AppendResult => {
      const found = recorded.get(draft.eventId);
      if (found !== undefined) return { duplicate: true, sequence: found };
      sequence += 1n;
      const record: AuditRecord = { ...draft, sequence, prevHash, recordedAt, hash: "" };
      record.hash = computeHash(record);
      prevHash = record.hash;
      recorded.set(draft.eventId, sequence);
      fresh.push(record);
      return { duplicate: false, sequence };
    });
    if (fresh.length === 0) {
      await client.query("COMMIT");
      return results;
    }
    await client.query({ ...SQL.insert, values: batchParams(fresh) });
    await client.query(SQL.advanceHeadAndCommit(sequence, prevHash));
    return results;
  } catch (err) {
    try {
      await client.query("ROLLBACK"); // a failed statement aborted the transaction (and the COMMIT after it)
    } catch (rollbackErr) {
      broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
    }
    throw err;
  } finally {
    client.release(broken);
  }
}

/** Appends one event to the trail, exactly once: {@link appendRecords} of one. */
export async function appendRecord(pool: pg.Pool, draft: AuditRecord, nowMs?: number): Promise<AppendResult> {
  const [result] = await appendRecords(pool, [draft], nowMs);
  if (result === undefined) throw new Error("append returned no result");
  return result;
}

/** The chain's anchor: last appended sequence and hash (0 and GENESIS_HASH when empty). */
export async function readChainHead(pool: pg.Pool): Promise<{ lastSequence: bigint; lastHash: string }> {
  const { rows } = await pool.query<{ last_sequence: bigint; last_hash: string }>(
    "SELECT last_sequence, last_hash FROM chain_head",
  );
  const row = rows[0];
  if (row === undefined) throw new Error("audit chain_head row is missing");
  return { lastSequence: BigInt(row.last_sequence), lastHash: row.last_hash };
}
