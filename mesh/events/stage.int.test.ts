import { randomBytes, randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActorType, type EventEnvelope } from "../../gen/codex/events/v1/envelope_pb.js";
import { connectNats } from "../nats/connection.js";
import { DurableConsumer } from "../nats/consumer.js";
import { deleteStreams, ensureStreams } from "../nats/streams.js";
import { subjectsFor } from "../nats/subjects.js";
import { eventually, readStream } from "../nats/testing.js";
import { OutboxRelay } from "../outbox/relay.js";
import { outboxMigrationSql } from "../outbox/schema.js";
import { dropSchema, migrate } from "../postgres/migrations.js";
import { createPool, withTransaction } from "../postgres/pool.js";
import { decodeEnvelope, EnvelopeHeaders, newEnvelope, stageEvent, unpackPayload } from "./envelope.js";

const tag = randomBytes(5).toString("hex");
const schema = `t_events_${tag}`;
const prefix = `t${tag}`;
const subjects = subjectsFor(prefix);
let pool: pg.Pool;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  pool = createPool({ url: "postgres://root@127.0.0.1:5432/test", schema });
  await migrate(pool, { schema, migrations: [{ version: 1, name: "outbox", sql: outboxMigrationSql() }] });
  nc = await connectNats({ servers: "nats://127.0.0.1:4222", name: "mesh-events-test" });
  jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, prefix);
});

afterAll(async () => {
  await deleteStreams(jsm, prefix);
  await nc.close();
  await dropSchema(pool, schema);
  await pool.end();
});

describe("stageEvent", () => {
  it("goes from a committed transaction through the relay to a consumer, with subject, headers and msg id", async () => {
    const envelope = newEnvelope({
      schema: StringValueSchema,
      payload: create(StringValueSchema, { value: "made" }),
      aggregateType: "widget",
      aggregateId: "w-7",
      actor: { type: ActorType.SERVICE, id: "widgets" },
      correlationId: "req-42",
      source: "widgets",
    });
    await withTransaction(pool, (c) => stageEvent(c, subjects, envelope));
    await withTransaction(pool, (c) =>
      stageEvent(c, subjects, { ...envelope, id: randomUUID() }, "WidgetRenamed"),
    );

    const received: EventEnvelope[] = [];
    const consumer = new DurableConsumer({
      nc,
      stream: subjects.streams.events,
      durable: "widget-watcher",
      filterSubjects: [`${prefix}.events.widget.>`],
      dlqSubject: subjects.dlq("widget-watcher"),
      handler: async (m) => void received.push(decodeEnvelope(m.data)),
    });
    await consumer.start();
    const relay = new OutboxRelay({ pool, schema, js: jetstream(nc) });
    relay.start();
    try {
      await eventually("both events consumed", () => received.length === 2);
    } finally {
      await relay.stop();
      await consumer.stop();
    }

    const stored = await readStream(jsm, subjects.streams.events);
    expect(stored.map((m) => m.subject)).toEqual([
      `${prefix}.events.widget.StringValue`,
      `${prefix}.events.widget.WidgetRenamed`,
    ]);
    expect(stored[0]?.header.get("Nats-Msg-Id")).toBe(envelope.id);
    expect(stored[0]?.header.get(EnvelopeHeaders.eventType)).toBe("google.protobuf.StringValue");
    expect(stored[0]?.header.get(EnvelopeHeaders.correlationId)).toBe("req-42");
    expect(received[0]?.id).toBe(envelope.id);
    expect(received[0] && unpackPayload(received[0], StringValueSchema)?.value).toBe("made");
  });

  it("refuses an aggregate type that is not a subject token, before touching the database", async () => {
    const envelope = newEnvelope({
      schema: StringValueSchema,
      payload: create(StringValueSchema),
      aggregateType: "work.item",
      aggregateId: "x",
      actor: { type: ActorType.SERVICE, id: "s" },
      source: "s",
    });
    await expect(withTransaction(pool, (c) => stageEvent(c, subjects, envelope))).rejects.toThrow(
      /invalid aggregate type/,
    );
    const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM outbox WHERE id = $1", [
      envelope.id,
    ]);
    expect(rows[0]?.n).toBe(0);
  });
});
