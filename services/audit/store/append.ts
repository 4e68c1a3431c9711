import type pg from "pg";
import type { AuditRecord } from "../../../gen/codex/audit/v1/audit_record_pb.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import { computeHash } from "../domain/chain.js";
import { nowTimestamp } from "../domain/timestamps.js";
import { INSERT_SQL, rowParams } from "./record-row.js";

/** What an append did: recorded the event at `sequence`, or found it already recorded there. */
export type AppendResult = { duplicate: boolean; sequence: bigint };

/**
 * Appends one event to the trail, exactly once.
 *
 * Why this shape: the chain must be linear (each record links to the one before it) and the
 * sequence gapless, whatever the number of consumers and replicas. The transaction locks the
 * single chain_head row FOR UPDATE first, so appends are serialized; the duplicate check runs
 * under that lock, so two deliveries of one event racing on two replicas cannot both pass it
 * (event_id is UNIQUE as a last line of defence). The head advances in the same transaction
 * as the insert: a failure rolls both back and leaves no gap.
 *
 * `draft` is the record without chain position and recorded_at (see draftFromEnvelope).
 */
export async function appendRecord(pool: pg.Pool, draft: AuditRecord, nowMs?: number): Promise<AppendResult> {
  return withTransaction(pool, async (client) => {
    const head = await client.query<{ last_sequence: bigint; last_hash: string }>(
      "SELECT last_sequence, last_hash FROM chain_head FOR UPDATE",
    );
    const current = head.rows[0];
    if (current === undefined) throw new Error("audit chain_head row is missing");
    const existing = await client.query<{ sequence: bigint }>(
      "SELECT sequence FROM audit_records WHERE event_id = $1",
      [draft.eventId],
    );
    const found = existing.rows[0];
    if (found !== undefined) return { duplicate: true, sequence: BigInt(found.sequence) };

    const record: AuditRecord = {
      ...draft,
      sequence: BigInt(current.last_sequence) + 1n,
      prevHash: current.last_hash,
      recordedAt: nowTimestamp(nowMs),
      hash: "",
    };
    record.hash = computeHash(record);
    await client.query(INSERT_SQL, rowParams(record));
    await client.query("UPDATE chain_head SET last_sequence = $1, last_hash = $2", [
      record.sequence.toString(),
      record.hash,
    ]);
    return { duplicate: false, sequence: record.sequence };
  });
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
