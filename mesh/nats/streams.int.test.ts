import { randomBytes } from "node:crypto";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection, Status } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats } from "./connection.js";
import { publish } from "./publisher.js";
import { DUPLICATE_WINDOW_MS, deleteStreams, ensureStreams } from "./streams.js";
import { subjectsFor } from "./subjects.js";
import { eventually, readStream } from "./testing.js";

const prefix = `t${randomBytes(5).toString("hex")}`;
const subjects = subjectsFor(prefix);
let nc: NatsConnection;
let jsm: JetStreamManager;
let js: JetStreamClient;

beforeAll(async () => {
  nc = await connectNats({ servers: "nats://127.0.0.1:4222", name: "mesh-streams-test" });
  jsm = await jetstreamManager(nc);
  js = jetstream(nc);
});

afterAll(async () => {
  await deleteStreams(jsm, prefix);
  await nc.close();
});

describe("connectNats", () => {
  it("names the connection and reports status changes to onStatus", async () => {
    const statuses: Status[] = [];
    const conn = await connectNats({
      servers: ["nats://127.0.0.1:4222"],
      name: "mesh-status-probe",
      onStatus: (s) => statuses.push(s),
    });
    expect(conn.info?.jetstream).toBe(true);
    await conn.close();
    await eventually("close status", () => statuses.some((s) => s.type === "close"), 2_000);
  });
});

describe("ensureStreams", () => {
  it("provisions the four streams idempotently, even when called concurrently", async () => {
    const results = await Promise.all(
      [1, 2, 3].map(() => ensureStreams(jsm, prefix, { maxAgeMs: 3_600_000 })),
    );
    for (const r of results) expect(r.events.config.name).toBe(subjects.streams.events);
    const again = await ensureStreams(jsm, prefix, { maxAgeMs: 3_600_000 });
    const events = again.events.config;
    expect(events.subjects).toEqual([`${prefix}.events.>`]);
    expect(events.storage).toBe("file");
    expect(events.retention).toBe("limits");
    expect(events.duplicate_window).toBe(DUPLICATE_WINDOW_MS * 1_000_000);
    expect(events.max_age).toBe(3_600_000 * 1_000_000);
    expect(again.dlq.config.subjects).toEqual([`${prefix}.dlq.>`]);
    const names: string[] = [];
    for await (const name of jsm.streams.names()) if (name.startsWith(prefix.toUpperCase())) names.push(name);
    expect(names.sort()).toEqual(Object.values(subjects.streams).sort());
  });

  it("converges an existing stream to changed settings", async () => {
    await ensureStreams(jsm, prefix, { maxAgeMs: 3_600_000 });
    const updated = await ensureStreams(jsm, prefix, { maxAgeMs: 7_200_000 });
    expect(updated.commands.config.max_age).toBe(7_200_000 * 1_000_000);
  });
});

describe("publish", () => {
  it("deduplicates by msgId and carries headers", async () => {
    await ensureStreams(jsm, prefix);
    const subject = subjects.system("DedupeProbe");
    const data = new TextEncoder().encode("hello");
    const first = await publish(js, subject, data, {
      msgId: "m-1",
      headers: { traceparent: "00-abc-def-01" },
    });
    const second = await publish(js, subject, data, { msgId: "m-1" });
    const third = await publish(js, subject, data, { msgId: "m-2" });
    expect(first.duplicate).toBe(false);
    expect(second).toEqual({ stream: subjects.streams.system, seq: first.seq, duplicate: true });
    expect(third.duplicate).toBe(false);
    const stored = await readStream(jsm, subjects.streams.system);
    expect(stored.map((m) => m.header.get("Nats-Msg-Id"))).toEqual(["m-1", "m-2"]);
    expect(stored[0]?.header.get("traceparent")).toBe("00-abc-def-01");
  });

  it("rejects an empty msgId and subjects no stream captures", async () => {
    const data = new Uint8Array([1]);
    await expect(publish(js, subjects.system("X"), data, { msgId: "" })).rejects.toThrow(/msgId/);
    await expect(publish(js, `${prefix}.nowhere.x`, data, { msgId: "x", timeoutMs: 500 })).rejects.toThrow();
  });
});
