/**
 * The group committer against a real PostgreSQL, with kinds made for the test: the order of
 * statements and of events inside a batch, the retry of a failed batch change by change, and
 * one change per key per batch.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EventEnvelope, EventEnvelopeSchema } from "../../../gen/codex/events/v1/envelope_pb.js";
import { createLogger } from "../../../mesh/logging.js";
import { subjectsFor } from "../../../mesh/nats/subjects.js";
import { outboxMigrationSql } from "../../../mesh/outbox/schema.js";
import { dropSchema, migrate } from "../../../mesh/postgres/migrations.js";
import { createPool } from "../../../mesh/postgres/pool.js";
import { type BatchKind, GroupCommitter } from "./group-commit.js";

const schema = `t_gc_${randomBytes(5).toString("hex")}`;
const subjects = subjectsFor(`t${randomBytes(4).toString("hex")}`);
let pool: pg.Pool;

beforeAll(async () => {
  pool = createPool({ url: "postgres://root@127.0.0.1:5432/test", schema, max: 4 });
  await migrate(pool, {
    schema,
    migrations: [
      { version: 1, name: "things", sql: "CREATE TABLE things (id text PRIMARY KEY, n int NOT NULL)" },
      { version: 2, name: "outbox", sql: outboxMigrationSql() },
    ],
  });
});

afterAll(async () => {
  await dropSchema(pool, schema);
  await pool.end();
});

const event = (name: string, id: string): EventEnvelope =>
  create(EventEnvelopeSchema, {
    id: randomUUID(),
    type: `codex.test.v1.${name}`,
    aggregateType: "thing",
    aggregateId: id,
    source: "test",
  });

/** Inserts things; answers after a second, dependent round trip (as enqueue does on conflicts). */
const insert: BatchKind<string, number> = {
  name: "insert",
  async apply(ctx, ids) {
    await ctx.client.query("INSERT INTO things (id, n) SELECT unnest($1::text[]), 1", [ids]);
    const { rows } = await ctx.client.query<{ id: string; n: number }>(
      "SELECT id, n FROM things WHERE id = ANY($1::text[])",
      [ids],
    );
    for (const id of ids) ctx.stage(event("Inserted", id));
    return ids.map((id) => ({ ok: true, value: rows.find((r) => r.id === id)?.n ?? -1 }));
  },
};

/** Bumps things, relying on an insert of the same batch having run before its statement. */
const bump: BatchKind<string, number | undefined> = {
  name: "bump",
  async apply(ctx, ids) {
    const { rows } = await ctx.client.query<{ id: string; n: number }>(
      "UPDATE things SET n = n + 1 WHERE id = ANY($1::text[]) RETURNING id, n",
      [ids],
    );
    for (const r of rows) ctx.stage(event("Bumped", r.id));
    return ids.map((id) => ({ ok: true, value: rows.find((r) => r.id === id)?.n }));
  },
};

function committer(): GroupCommitter {
  return new GroupCommitter({
    pool,
    subjects,
    logger: createLogger({ service: "group-commit-test", level: "error" }),
    kinds: [insert, bump],
    maxBatch: 100,
  });
}

/** Event types staged in the outbox for these things, in outbox order. */
async function staged(ids: string[]): Promise<string[]> {
  const { rows } = await pool.query<{ subject: string; payload: Buffer }>(
    "SELECT subject, payload FROM outbox ORDER BY seq",
  );
  const mine = rows.filter((r) => ids.some((id) => r.payload.includes(Buffer.from(id))));
  return mine.map((r) => r.subject.slice(r.subject.lastIndexOf(".") + 1));
}

describe("group commit", () => {
  it("sends a batch's kinds together: a later kind sees an earlier one's rows, and events keep kind order", async () => {
    const c = committer();
    const ids = [`a-${randomUUID()}`, `b-${randomUUID()}`];
    // Submitted bump first: kinds still apply in registered order within the batch.
    const results = await Promise.all([
      ...ids.map((id) => c.submit(bump, id)),
      ...ids.map((id) => c.submit(insert, id)),
    ]);
    // The bumps found the rows inserted in the same batch (2); the inserts' own second statement
    // was sent behind the bumps' first, so it read them bumped as well.
    expect(results).toEqual([2, 2, 2, 2]);
    // The insert kind stages its events after a second round trip, later than bump answers; the
    // events still come out as the kinds' order says.
    expect(await staged(ids)).toEqual(["Inserted", "Inserted", "Bumped", "Bumped"]);
  });

  it("retries a failed batch change by change, so one bad change fails alone", async () => {
    const c = committer();
    const taken = `taken-${randomUUID()}`;
    await c.submit(insert, taken);
    const fresh = `fresh-${randomUUID()}`;
    const [dup, ok] = await Promise.allSettled([c.submit(insert, taken), c.submit(insert, fresh)]);
    expect(dup.status).toBe("rejected");
    expect(ok).toEqual({ status: "fulfilled", value: 1 });
    const { rows } = await pool.query("SELECT n FROM things WHERE id = $1", [fresh]);
    expect(rows).toEqual([{ n: 1 }]);
    // Only the committed changes staged events: the duplicate's was rolled back with it.
    expect(await staged([taken, fresh])).toEqual(["Inserted", "Inserted"]);
  });

  it("never puts two changes of one key in the same batch, and keeps their order", async () => {
    const c = committer();
    const id = `k-${randomUUID()}`;
    await c.submit(insert, id);
    const bumps = await Promise.all([c.submit(bump, id, id), c.submit(bump, id, id), c.submit(bump, id, id)]);
    expect(bumps).toEqual([2, 3, 4]);
  });
});
