import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuditRecord, AuditRecordSchema } from "../../../gen/codex/audit/v1/audit_record_pb.js";
import { ActorType } from "../../../gen/codex/events/v1/envelope_pb.js";
import { migrate } from "../../../mesh/postgres/migrations.js";
import { createPool } from "../../../mesh/postgres/pool.js";
import { DATABASE_URL, dropTestSchema, uniqueName } from "../../../test/support/harness.js";
import { GENESIS_HASH } from "../domain/chain.js";
import { ChainVerifier } from "../domain/verify.js";
import { appendRecord, appendRecords, readChainHead } from "./append.js";
import { auditMigrations } from "./migrations.js";
import { scanRange } from "./query.js";

const schema = uniqueName("audit_append");
let pool: pg.Pool;

beforeAll(async () => {
  pool = createPool({ url: DATABASE_URL, schema, max: 8 });
  await migrate(pool, { schema, migrations: auditMigrations });
});

afterAll(async () => {
  await pool?.end();
  await dropTestSchema(schema);
});

/** A draft as draftFromEnvelope makes it; `i` varies the optional parts (actor, occurred_at). */
function draft(i: number, eventId: string = randomUUID()): AuditRecord {
  const d = create(AuditRecordSchema, {
    eventId,
    eventType: "codex.events.v1.ProjectUpdated",
    aggregateType: "project",
    aggregateId: `p-${i}`,
    aggregateVersion: i % 3 === 0 ? 18_446_744_073_709_551_615n : BigInt(i),
    projectId: i % 2 === 0 ? "proj" : "",
    correlationId: `c-${i}`,
    payloadJson: JSON.stringify({ description: `rev "${i}" \\ {a,b} NULL` }),
    source: "test",
    traceId: i % 2 === 0 ? "4bf92f3577b34da6a3ce929d0e0e4736" : "",
  });
  if (i % 2 === 0)
    d.actor = { $typeName: "codex.events.v1.Actor", type: ActorType.USER, id: "alice", displayName: "" };
  if (i % 4 !== 1) {
    d.occurredAt = {
      $typeName: "google.protobuf.Timestamp",
      seconds: 1_700_000_000n + BigInt(i),
      nanos: 123_456_789,
    };
  }
  return d;
}

/** Every record of the trail, oldest first. */
async function trail(): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const batch of scanRange(pool, 1n, 1_000_000n, 100)) out.push(...batch);
  return out;
}

/** The whole trail re-hashed and re-linked, and the head on its newest record. */
async function expectIntactChain(): Promise<AuditRecord[]> {
  const records = await trail();
  const verifier = new ChainVerifier(1n, GENESIS_HASH);
  for (const r of records) expect(verifier.check(r)).toBeUndefined();
  const head = await readChainHead(pool);
  expect(head).toEqual({
    lastSequence: BigInt(records.length),
    lastHash: records.at(-1)?.hash ?? GENESIS_HASH,
  });
  return records;
}

describe("appendRecords", () => {
  it("records a batch in order in one transaction, each event id once, with a valid chain", async () => {
    const first = Array.from({ length: 7 }, (_, i) => draft(i));
    const repeated = first[2]!;
    const results = await appendRecords(pool, [...first.slice(0, 5), repeated, ...first.slice(5)]);
    expect(results.map((r) => r.duplicate)).toEqual([false, false, false, false, false, true, false, false]);
    expect(results[5]).toEqual({ duplicate: true, sequence: results[2]?.sequence });

    // Already recorded ids in a later batch are reported where they are, the rest appended after.
    const more = [draft(10), first[0]!, draft(11), first[6]!];
    const again = await appendRecords(pool, more);
    expect(again).toEqual([
      { duplicate: false, sequence: 8n },
      { duplicate: true, sequence: 1n },
      { duplicate: false, sequence: 9n },
      { duplicate: true, sequence: 7n },
    ]);
    expect(await appendRecords(pool, [first[1]!])).toEqual([{ duplicate: true, sequence: 2n }]);

    const records = await expectIntactChain();
    const expectedIds = [...first, more[0]!, more[2]!].map((d) => d.eventId);
    expect(records.map((r) => r.eventId)).toEqual(expectedIds);
    // Every hashed field survives the columnar insert exactly (actor absent or empty name,
    // sub-microsecond nanos, uint64 max, quotes and backslashes in text).
    for (const r of records) {
      const original = [...first, ...more].find((d) => d.eventId === r.eventId)!;
      expect({ ...r, sequence: 0n, prevHash: "", hash: "", recordedAt: undefined }).toEqual({
        ...original,
        recordedAt: undefined,
      });
    }
    expect(new Set(records.slice(0, 7).map((r) => r.recordedAt?.nanos)).size).toBe(1);
  });

  it("keeps one linear chain while batches with overlapping ids race", async () => {
    const before = (await readChainHead(pool)).lastSequence;
    const drafts = Array.from({ length: 120 }, (_, i) => draft(i));
    const batches = Array.from({ length: 8 }, (_, b) => drafts.filter((_, i) => (i + b) % 3 !== 0));
    await Promise.all([
      ...batches.map((batch) => appendRecords(pool, batch)),
      ...drafts.slice(0, 10).map((d) => appendRecord(pool, d)),
    ]);
    const records = await expectIntactChain();
    expect(records.length).toBe(Number(before) + drafts.length);
    const ids = records.map((r) => r.eventId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("lets the head only advance onto the newest record, with its hash", async () => {
    const head = await readChainHead(pool);
    const set = "UPDATE chain_head SET last_sequence = $1, last_hash = $2";
    const refused = /only advances/;
    await expect(pool.query(set, [(head.lastSequence - 1n).toString(), head.lastHash])).rejects.toThrow(
      refused,
    );
    await expect(pool.query(set, [(head.lastSequence + 1n).toString(), head.lastHash])).rejects.toThrow(
      refused,
    );
    await expect(pool.query("DELETE FROM chain_head")).rejects.toThrow(refused);

    // Two records written behind the head's back (rolled back at the end).
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      const copy = `INSERT INTO audit_records (sequence, event_id, event_type, aggregate_type, aggregate_id,
        aggregate_version, project_id, actor_id, actor_display_name, correlation_id, causation_id,
        recorded_at, recorded_at_subus, payload_json, prev_hash, hash, source, trace_id)
        SELECT $1, $2, event_type, aggregate_type, aggregate_id, aggregate_version, project_id, actor_id,
          actor_display_name, correlation_id, causation_id, recorded_at, recorded_at_subus, payload_json,
          prev_hash, $3, source, trace_id FROM audit_records WHERE sequence = 1`;
      const next = [head.lastSequence + 1n, head.lastSequence + 2n];
      for (const n of next) await client.query(copy, [n.toString(), randomUUID(), `${n}`.padStart(64, "a")]);
      const attempt = async (sequence: bigint, hash: string) => {
        await client.query("SAVEPOINT attempt");
        try {
          await client.query(set, [sequence.toString(), hash]);
          return "advanced";
        } catch (err) {
          await client.query("ROLLBACK TO SAVEPOINT attempt");
          return String(err);
        }
      };
      const [n1, n2] = next as [bigint, bigint];
      expect(await attempt(n1, `${n1}`.padStart(64, "a"))).toMatch(refused); // a record lies beyond
      expect(await attempt(n2, "f".repeat(64))).toMatch(refused); // not that record's hash
      expect(await attempt(n2, `${n2}`.padStart(64, "a"))).toBe("advanced"); // several at once
    } finally {
      await client.query("ROLLBACK");
      client.release();
    }
    expect(await readChainHead(pool)).toEqual(head);
  });

  it("leaves no trace of a batch whose head update is refused, and keeps the connection usable", async () => {
    const head = await readChainHead(pool);
    const rogue = head.lastSequence + 50n; // beyond where the batch ends: the head may not stop short of it
    const columns = `sequence, event_id, event_type, aggregate_type, aggregate_id, aggregate_version,
      project_id, actor_id, actor_display_name, correlation_id, causation_id, recorded_at,
      recorded_at_subus, payload_json, prev_hash, hash, source, trace_id`;
    await pool.query(
      `INSERT INTO audit_records (${columns}) SELECT $1, $2, event_type, aggregate_type, aggregate_id,
        aggregate_version, project_id, actor_id, actor_display_name, correlation_id, causation_id,
        recorded_at, recorded_at_subus, payload_json, prev_hash, hash, source, trace_id
        FROM audit_records WHERE sequence = 1`,
      [rogue.toString(), randomUUID()],
    );
    const drafts = [draft(1), draft(2), draft(3)];
    await expect(appendRecords(pool, drafts)).rejects.toThrow(/only advances/);
    const ids = drafts.map((d) => d.eventId);
    expect((await pool.query("SELECT 1 FROM audit_records WHERE event_id = ANY($1)", [ids])).rowCount).toBe(
      0,
    );
    expect(await readChainHead(pool)).toEqual(head);

    // Remove the rogue record as only a superuser could; then the same events append normally.
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("ALTER TABLE audit_records DISABLE TRIGGER USER");
      await client.query("DELETE FROM audit_records WHERE sequence = $1", [rogue.toString()]);
      await client.query("ALTER TABLE audit_records ENABLE TRIGGER USER");
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    const results = await Promise.all(Array.from({ length: 10 }, () => appendRecords(pool, drafts)));
    expect(
      results
        .flat()
        .filter((r) => !r.duplicate)
        .map((r) => r.sequence),
    ).toEqual([1n, 2n, 3n].map((n) => head.lastSequence + n));
    await expectIntactChain();
  });
});
