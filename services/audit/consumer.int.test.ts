import { randomUUID } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService } from "../../gen/codex/audit/v1/audit_service_pb.js";
import { ProjectCreatedSchema, ProjectUpdatedSchema } from "../../gen/codex/events/v1/project_events_pb.js";
import { ServiceHealthChangedSchema } from "../../gen/codex/events/v1/system_events_pb.js";
import { connectNats } from "../../mesh/nats/connection.js";
import { publish } from "../../mesh/nats/publisher.js";
import { subjectsFor } from "../../mesh/nats/subjects.js";
import { eventually, readStream } from "../../mesh/nats/testing.js";
import { NATS_URL } from "../../test/support/harness.js";
import {
  type AuditTestService,
  countRecords,
  envelopeOf,
  principals,
  publishEvent,
  publishSystemEvent,
  startAudit,
  waitForEvents,
} from "./testing.js";

type Svc = AuditTestService;

function projectEvents(n: number, projectId = randomUUID()) {
  return Array.from({ length: n }, (_, i) =>
    i === 0
      ? envelopeOf(
          ProjectCreatedSchema,
          { projectId, name: `p-${i}` },
          { aggregateType: "project", aggregateId: projectId, projectId, version: 1 },
        )
      : envelopeOf(
          ProjectUpdatedSchema,
          { projectId, changedFields: ["description"], description: `rev ${i}` },
          { aggregateType: "project", aggregateId: projectId, projectId, version: i + 1 },
        ),
  );
}

/** Every record exactly once, sequences 1..n without gaps, and the chain intact. */
async function expectCompleteTrail(svc: Svc, ids: string[], timeoutMs?: number) {
  const pool = svc.running.host.pool;
  await waitForEvents(pool, ids, timeoutMs);
  const { rows } = await pool.query<{ event_id: string; n: number }>(
    "SELECT event_id, count(*)::int AS n FROM audit_records GROUP BY event_id HAVING count(*) > 1",
  );
  expect(rows).toEqual([]);
  const seq = await pool.query<{ max: bigint; n: number }>(
    "SELECT max(sequence) AS max, count(*)::int AS n FROM audit_records",
  );
  expect(BigInt(seq.rows[0]!.max)).toBe(BigInt(seq.rows[0]!.n));
  const verified = await svc.client(AuditService, principals.admin).verifyChain({});
  expect(verified).toMatchObject({ ok: true, firstBrokenSequence: 0n });
}

describe("audit consumer", () => {
  let svc: Svc;
  beforeAll(async () => {
    svc = await startAudit();
  });
  afterAll(async () => svc?.cleanup());

  it("records every event once, despite duplicate publishes with and without JetStream dedupe", async () => {
    const { js, subjects } = svc.running.host.nats;
    const events = projectEvents(20);
    for (const e of events) await publishEvent(js, subjects, e);
    for (const e of events.slice(0, 5)) await publishEvent(js, subjects, e); // deduped by the server
    for (const e of events.slice(5, 10)) await publishEvent(js, subjects, e, randomUUID()); // stored twice
    const sys = envelopeOf(
      ServiceHealthChangedSchema,
      { service: "scheduler" },
      { aggregateType: "service", aggregateId: "scheduler" },
    );
    await publishSystemEvent(js, subjects, sys);
    await expectCompleteTrail(svc, [...events.map((e) => e.id), sys.id]);
    expect(await countRecords(svc.running.host.pool)).toBe(21);
    const system = await countRecords(svc.running.host.pool, "event_id = $1 AND event_type = $2", [
      sys.id,
      "codex.events.v1.ServiceHealthChanged",
    ]);
    expect(system).toBe(1);
  });

  it("dead-letters an undecodable message at once and keeps recording", async () => {
    const { js, jsm, subjects } = svc.running.host.nats;
    await publish(js, subjects.event("project", "Garbage"), new Uint8Array([0xff, 0xff, 0xff]), {
      msgId: randomUUID(),
    });
    const after = projectEvents(2);
    for (const e of after) await publishEvent(js, subjects, e);
    await waitForEvents(
      svc.running.host.pool,
      after.map((e) => e.id),
    );
    const dlq = await readStream(jsm, subjects.streams.dlq);
    expect(dlq.some((m) => m.subject === subjects.dlq("audit"))).toBe(true);
  });
});

describe("audit consumer across restarts and replicas", () => {
  /**
   * The waits are generous for a loaded CI machine yet far below ack_wait: the events a stopping
   * replica had pulled come back when it hands them back (~6 s), and one it lost would come back
   * only after ack_wait, which fails the test instead of passing late.
   */
  const WAIT_MS = 60_000;
  const env = { AUDIT_ACK_WAIT_MS: "180s" };

  it("resumes after a restart and shares work between replicas without forking the chain", async () => {
    const first = await startAudit({ env });
    const { prefix, schema } = first;
    const { js, subjects } = first.running.host.nats;
    const events = projectEvents(60);
    for (const e of events.slice(0, 20)) await publishEvent(js, subjects, e);
    await waitForEvents(
      first.running.host.pool,
      events.slice(0, 10).map((e) => e.id),
      WAIT_MS,
    );
    await first.running.stop("simulated crash mid-way");

    // Published while no consumer runs; then two replicas share the durable consumer.
    const second = await startAudit({ prefix, schema, env });
    const third = await startAudit({ prefix, schema, env });
    try {
      const pub = second.running.host.nats;
      for (const e of events.slice(20)) await publishEvent(pub.js, pub.subjects, e);
      for (const e of events.slice(15, 30)) await publishEvent(pub.js, pub.subjects, e, randomUUID());
      await expectCompleteTrail(
        second,
        events.map((e) => e.id),
        WAIT_MS,
      );
      expect(await countRecords(second.running.host.pool, "event_type LIKE 'codex.events.v1.Project%'")).toBe(
        60,
      );
    } finally {
      await third.running.stop("test finished");
      await second.cleanup();
    }
  }, 150_000);
});

describe("audit consumer batches", () => {
  const WAIT_MS = 60_000;
  const env = { AUDIT_ACK_WAIT_MS: "180s" };

  /** Stream order, as the trail recorded it: the project events' versions by sequence. */
  async function recordedVersions(svc: Svc, aggregateId: string): Promise<number[]> {
    const { rows } = await svc.running.host.pool.query<{ v: number }>(
      "SELECT aggregate_version::int AS v FROM audit_records WHERE aggregate_id = $1 ORDER BY sequence",
      [aggregateId],
    );
    return rows.map((r) => r.v);
  }

  it("records a burst once each, in stream order, in a few transactions; a batch with an already recorded event and an undecodable one records the rest and dead-letters only the bad one", async () => {
    const first = await startAudit({ env });
    const { prefix, schema } = first;
    const subjects = subjectsFor(prefix);
    const projectId = randomUUID();
    const events = projectEvents(150, projectId);
    const early = events[0]!;
    await publishEvent(first.running.host.nats.js, subjects, early);
    await waitForEvents(first.running.host.pool, [early.id], WAIT_MS);
    await first.running.stop("stopped so that the next events arrive together");

    // Published while no consumer runs, so the restarted one pulls them in a few batches: the
    // recorded event again (past JetStream's dedupe: another msg id), garbage in the middle.
    const nc = await connectNats({ servers: NATS_URL, name: "audit-batch-test" });
    try {
      const js = jetstream(nc);
      await publishEvent(js, subjects, early, randomUUID());
      for (const e of events.slice(1, 75)) await publishEvent(js, subjects, e);
      await publish(js, subjects.event("project", "Garbage"), new Uint8Array([0x0a, 0xff]), {
        msgId: randomUUID(),
      });
      for (const e of events.slice(75)) await publishEvent(js, subjects, e);
    } finally {
      await nc.close();
    }

    const second = await startAudit({ prefix, schema, env });
    try {
      await expectCompleteTrail(
        second,
        events.map((e) => e.id),
        WAIT_MS,
      );
      const pool = second.running.host.pool;
      expect(await countRecords(pool)).toBe(150);
      expect(await countRecords(pool, "event_id = $1 AND sequence = 1", [early.id])).toBe(1);
      expect(await recordedVersions(second, projectId)).toEqual(events.map((_, i) => i + 1));
      // Batched: far fewer transactions (row xmin) than records.
      const { rows } = await pool.query<{ tx: number }>(
        "SELECT count(DISTINCT xmin::text)::int AS tx FROM audit_records WHERE sequence > 1",
      );
      expect(rows[0]!.tx).toBeLessThan(40);

      const jsm = await jetstreamManager(second.running.host.nats.nc);
      await eventually(
        "the undecodable event dead-lettered",
        async () => (await readStream(jsm, subjects.streams.dlq)).length > 0,
        WAIT_MS,
      );
      const dlq = await readStream(jsm, subjects.streams.dlq);
      expect(dlq.map((m) => m.subject)).toEqual([subjects.dlq("audit")]);
      await eventually(
        "every message acked",
        async () => {
          const info = await jsm.consumers.info(subjects.streams.events, "audit");
          return info.num_pending + info.num_ack_pending === 0;
        },
        WAIT_MS,
      );
    } finally {
      await second.cleanup();
    }
  }, 150_000);
});
