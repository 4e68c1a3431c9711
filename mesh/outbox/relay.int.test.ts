import { randomBytes, randomUUID } from "node:crypto";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connectNats } from "../nats/connection.js";
import { publish } from "../nats/publisher.js";
import { deleteStreams, ensureStreams } from "../nats/streams.js";
import { subjectsFor } from "../nats/subjects.js";
import { eventually, readStream } from "../nats/testing.js";
import { dropSchema, migrate } from "../postgres/migrations.js";
import { createPool, withTransaction } from "../postgres/pool.js";
import { enqueueOutbox } from "./enqueue.js";
import { OutboxRelay, type OutboxRelayOptions } from "./relay.js";
import { outboxMigrationSql } from "./schema.js";

const tag = randomBytes(5).toString("hex");
const schema = `t_outbox_${tag}`;
const prefix = `t${tag}`;
const subjects = subjectsFor(prefix);
const lateStreamsPrefix = `${prefix}late`;
let pool: pg.Pool;
let nc: NatsConnection;
let jsm: JetStreamManager;
let js: JetStreamClient;
const relays: OutboxRelay[] = [];

beforeAll(async () => {
  pool = createPool({ url: "postgres://root@127.0.0.1:5432/test", schema, max: 8 });
  await migrate(pool, { schema, migrations: [{ version: 1, name: "outbox", sql: outboxMigrationSql() }] });
  nc = await connectNats({ servers: "nats://127.0.0.1:4222", name: "mesh-outbox-test" });
  jsm = await jetstreamManager(nc);
  js = jetstream(nc);
  await ensureStreams(jsm, prefix);
});

afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.stop()));
  await pool.query("TRUNCATE outbox");
  await jsm.streams.purge(subjects.streams.events);
});

afterAll(async () => {
  await deleteStreams(jsm, prefix);
  await deleteStreams(jsm, lateStreamsPrefix);
  await nc.close();
  await dropSchema(pool, schema);
  await pool.end();
});

function relay(extra: Partial<OutboxRelayOptions> = {}): OutboxRelay {
  const r = new OutboxRelay({
    pool,
    schema,
    js,
    pollIntervalMs: 100,
    retryBackoff: { initialMs: 20, maxMs: 200 },
    ...extra,
  });
  relays.push(r);
  return r;
}

/** Stages `n` events, each in its own committed transaction like real service writes. */
async function stage(n: number, subject = subjects.event("widget", "WidgetMade")): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = randomUUID();
    ids.push(id);
    await withTransaction(pool, (c) =>
      enqueueOutbox(c, {
        id,
        subject,
        payload: new TextEncoder().encode(`event ${i}`),
        headers: { "X-N": String(i) },
      }),
    );
  }
  return ids;
}

/** Asserts the events stream holds exactly `ids`, each once, in staging order. */
async function expectExactlyOnce(ids: string[], stream = subjects.streams.events): Promise<void> {
  const stored = await readStream(jsm, stream);
  const seen = stored.map((m) => m.header.get("Nats-Msg-Id"));
  expect(seen.length).toBe(ids.length);
  expect(new Set(seen).size).toBe(ids.length);
  expect([...seen].sort()).toEqual([...ids].sort());
}

describe("outbox", () => {
  it("enqueue stores the row in the caller's transaction: rolled back means never published", async () => {
    const id = randomUUID();
    await expect(
      withTransaction(pool, async (c) => {
        await enqueueOutbox(c, {
          id,
          subject: subjects.event("widget", "Ghost"),
          payload: new Uint8Array([1]),
        });
        throw new Error("business rule failed");
      }),
    ).rejects.toThrow("business rule failed");
    const kept = await stage(1);
    expect(await relay().flush()).toBe(1);
    await expectExactlyOnce(kept);
    const stored = await readStream(jsm, subjects.streams.events);
    expect(stored[0]?.header.get("X-N")).toBe("0");
    expect(new TextDecoder().decode(stored[0]?.data)).toBe("event 0");
  });

  it("survives a relay stopped mid-way and a crash after publish: every event exactly once, none lost", async () => {
    const ids = await stage(60);
    // A relay that crashed after publishing the first 7 rows but before marking them.
    const { rows } = await pool.query<{ id: string; subject: string; payload: Buffer }>(
      "SELECT id, subject, payload FROM outbox ORDER BY seq LIMIT 7",
    );
    for (const r of rows) await publish(js, r.subject, r.payload, { msgId: r.id });

    let firstPublished = 0;
    let stopping: Promise<void> | undefined;
    const firstRelay = relay({
      batchSize: 5,
      onBatch: ({ published }) => {
        firstPublished += published;
        stopping ??= firstRelay.stop();
      },
    });
    firstRelay.start();
    await eventually("first batch", () => stopping !== undefined);
    await stopping;
    expect(firstPublished).toBe(5);
    expect((await firstRelay.lag()).pending).toBe(55);

    let duplicates = 0;
    let published = 0;
    const second = relay({
      batchSize: 5,
      onBatch: (s) => {
        published += s.published;
        duplicates += s.duplicates;
      },
    });
    second.start();
    await eventually("outbox drained", async () => (await second.lag()).pending === 0);
    expect(published).toBe(55);
    expect(duplicates).toBe(2); // rows 6 and 7: published by the "crashed" relay, dropped by JetStream
    await expectExactlyOnce(ids);
  });

  it("two relays running at once never publish the same row", async () => {
    const ids = await stage(150);
    const counts = [0, 0];
    let duplicates = 0;
    const make = (i: 0 | 1) =>
      relay({
        batchSize: 7,
        onBatch: (s) => {
          counts[i] = (counts[i] ?? 0) + s.published;
          duplicates += s.duplicates;
        },
      });
    const [a, b] = [make(0), make(1)];
    a.start();
    b.start();
    await eventually("outbox drained", async () => (await a.lag()).pending === 0);
    expect((counts[0] ?? 0) + (counts[1] ?? 0)).toBe(150);
    expect(duplicates).toBe(0);
    await expectExactlyOnce(ids);
  });

  it("wakes when a transaction that staged rows commits, not when one rolls back", async () => {
    let batches = 0;
    const r = relay({ pollIntervalMs: 60_000, onBatch: () => batches++ });
    r.start();
    await new Promise((resolve) => setTimeout(resolve, 200)); // its first (empty) batch, then idle
    await expect(
      withTransaction(pool, async (c) => {
        await enqueueOutbox(c, {
          id: randomUUID(),
          subject: subjects.event("widget", "WidgetMade"),
          payload: new Uint8Array([1]),
        });
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(batches).toBe(0);
    const ids = await stage(3);
    // Long before the 60 s poll: the commits woke it.
    await eventually("published on commit", async () => (await r.lag()).pending === 0, 3_000);
    await expectExactlyOnce(ids);
    // Rows committed outside any withTransaction (autocommit) wake it as well.
    const id = randomUUID();
    const client = await pool.connect();
    try {
      await enqueueOutbox(client, {
        id,
        subject: subjects.event("widget", "WidgetMade"),
        payload: new Uint8Array([2]),
      });
    } finally {
      client.release();
    }
    await eventually("published after autocommit", async () => (await r.lag()).pending === 0, 3_000);
    await expectExactlyOnce([...ids, id]);
  });

  /**
   * Stages one row in a transaction that stays open while two more rows commit and are published:
   * its seq is below the relay's cursor when it commits. Returns its id, the others' ids and the
   * commit of the held transaction.
   */
  async function straggler(
    r: OutboxRelay,
  ): Promise<{ late: string; early: string[]; commit: () => Promise<void> }> {
    const late = randomUUID();
    let release: (() => void) | undefined;
    let staged: (() => void) | undefined;
    const inserted = new Promise<void>((resolve) => {
      staged = resolve;
    });
    const tx = withTransaction(pool, async (c) => {
      await enqueueOutbox(c, {
        id: late,
        subject: subjects.event("widget", "WidgetMade"),
        payload: new Uint8Array([9]),
      });
      staged?.();
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    await inserted;
    const early = await stage(2);
    // The held row is invisible to everyone else until it commits.
    await eventually(
      "the later rows published",
      async () => (await readStream(jsm, subjects.streams.events)).length === early.length,
      3_000,
    );
    expect((await r.lag()).pending).toBe(0);
    const commit = async () => {
      release?.();
      await tx;
    };
    return { late, early, commit };
  }

  it("publishes a row committed after later rows were published, at once within the rescan window", async () => {
    const r = relay({ pollIntervalMs: 60_000 });
    r.start();
    await new Promise((resolve) => setTimeout(resolve, 200)); // the start-up full scan is done
    const { late, early, commit } = await straggler(r);
    await commit();
    await eventually(
      "the straggler published on its commit",
      async () => (await r.lag()).pending === 0,
      3_000,
    );
    await expectExactlyOnce([late, ...early]);
  });

  it("publishes a row committed too far behind the cursor with the next full scan", async () => {
    const r = relay({ pollIntervalMs: 300, rescanWindow: 0 });
    r.start();
    const { late, early, commit } = await straggler(r);
    await commit();
    await eventually(
      "the straggler published by a full scan",
      async () => (await r.lag()).pending === 0,
      3_000,
    );
    await expectExactlyOnce([late, ...early]);
  });

  it("reports lag of unpublished rows", async () => {
    await stage(4);
    await pool.query(
      "UPDATE outbox SET created_at = now() - interval '90 seconds' WHERE seq = (SELECT min(seq) FROM outbox)",
    );
    const lag = await relay().lag();
    expect(lag.pending).toBe(4);
    expect(lag.oldestAgeSeconds).toBeGreaterThanOrEqual(90);
    expect(lag.oldestAgeSeconds).toBeLessThan(120);
  });

  it("backs off and retries while NATS cannot take the events, then publishes them", async () => {
    const late = subjectsFor(lateStreamsPrefix);
    const ids = await stage(3, late.event("widget", "WidgetMade"));
    const errors: unknown[] = [];
    const r = relay({ publishTimeoutMs: 300, onError: (e) => errors.push(e) });
    r.start();
    await eventually("a publish failure", () => errors.length >= 2);
    expect((await r.lag()).pending).toBe(3);
    await ensureStreams(jsm, lateStreamsPrefix);
    await eventually("outbox drained", async () => (await r.lag()).pending === 0);
    await expectExactlyOnce(ids, late.streams.events);
  });

  it("deletes published rows past retention and keeps them when asked to", async () => {
    await stage(3);
    await relay({ retainPublishedMs: "forever" }).flush();
    await pool.query("UPDATE outbox SET published_at = now() - interval '2 hours'");
    const keeper = relay({ retainPublishedMs: "forever" });
    keeper.start();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await keeper.stop();
    expect((await pool.query("SELECT 1 FROM outbox")).rowCount).toBe(3);
    await stage(1); // fresh, unpublished: must survive the sweep
    const sweeper = relay({ retainPublishedMs: 60 * 60 * 1000 });
    sweeper.start();
    await eventually("old rows swept", async () => (await pool.query("SELECT 1 FROM outbox")).rowCount === 1);
  });
});

describe("outbox relay linger", () => {
  it("publishes rows committed in quick succession in one batch once woken, each exactly once", async () => {
    const batches: number[] = [];
    const r = relay({ lingerMs: 300, pollIntervalMs: 10_000, onBatch: (s) => batches.push(s.published) });
    r.start();
    await new Promise((res) => setTimeout(res, 200)); // idle, listening
    const ids = await stage(4); // four transactions, well within the linger
    await eventually("published", async () => (await readStream(jsm, subjects.streams.events)).length === 4);
    await expectExactlyOnce(ids);
    expect(batches).toEqual([4]);
  });
});
