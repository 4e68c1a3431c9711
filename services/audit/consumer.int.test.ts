import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService } from "../../gen/codex/audit/v1/audit_service_pb.js";
import { ProjectCreatedSchema, ProjectUpdatedSchema } from "../../gen/codex/events/v1/project_events_pb.js";
import { ServiceHealthChangedSchema } from "../../gen/codex/events/v1/system_events_pb.js";
import { publish } from "../../mesh/nats/publisher.js";
import { readStream } from "../../mesh/nats/testing.js";
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
