import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService, ChainBreakKind } from "../../gen/codex/audit/v1/audit_service_pb.js";
import { ProjectCreatedSchema } from "../../gen/codex/events/v1/project_events_pb.js";
import { Code, ServiceError } from "../../mesh/errors.js";
import { eventually } from "../../mesh/nats/testing.js";
import {
  type AuditTestService,
  countRecords,
  envelopeOf,
  principals,
  publishEvent,
  startAudit,
  waitForEvents,
} from "./testing.js";

/** What an operator with superuser rights could do behind the service's back. */
async function asSuperuser(svc: AuditTestService, sql: string, params: unknown[] = []) {
  const client = await svc.running.host.pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("ALTER TABLE audit_records DISABLE TRIGGER USER");
    await client.query(sql, params);
    await client.query("ALTER TABLE audit_records ENABLE TRIGGER USER");
    await client.query("COMMIT");
  } finally {
    client.release();
  }
}

describe("tamper evidence", () => {
  let svc: AuditTestService;
  beforeAll(async () => {
    svc = await startAudit();
    const { js, subjects } = svc.running.host.nats;
    const events = Array.from({ length: 6 }, (_, i) => {
      const id = randomUUID();
      return envelopeOf(
        ProjectCreatedSchema,
        { projectId: id, name: `p${i}` },
        { aggregateType: "project", aggregateId: id, projectId: id },
      );
    });
    for (const e of events) await publishEvent(js, subjects, e);
    await waitForEvents(
      svc.running.host.pool,
      events.map((e) => e.id),
    );
  });
  afterAll(async () => svc?.cleanup());

  const admin = () => svc.client(AuditService, principals.admin);

  it("verifies an intact chain and pins its last hash", async () => {
    const res = await admin().verifyChain({ startSequence: 1n, endSequence: 6n });
    expect(res).toMatchObject({ ok: true, recordsChecked: 6n, lastSequence: 6n, firstBrokenSequence: 0n });
    const beyond = await admin().verifyChain({ startSequence: 1n, endSequence: 500n });
    expect(beyond).toMatchObject({ ok: true, firstBrokenSequence: 0n });
    expect(beyond.lastSequence).toBeGreaterThanOrEqual(6n);
    const last = await admin().getAuditRecord({ sequence: 6n });
    expect(res.lastHash).toBe(last.auditRecord?.hash);
    expect(last.auditRecord?.prevHash).toMatch(/^[0-9a-f]{64}$/);
    const first = await admin().getAuditRecord({ sequence: 1n });
    expect(first.auditRecord?.prevHash).toBe("0".repeat(64));
  });

  it("refuses UPDATE, DELETE and TRUNCATE through the append-only triggers", async () => {
    const pool = svc.running.host.pool;
    await expect(
      pool.query("UPDATE audit_records SET payload_json = '{}' WHERE sequence = 1"),
    ).rejects.toThrow(/append-only/);
    await expect(pool.query("DELETE FROM audit_records WHERE sequence = 1")).rejects.toThrow(/append-only/);
    await expect(pool.query("TRUNCATE audit_records")).rejects.toThrow(/append-only/);
    await expect(pool.query("UPDATE chain_head SET last_sequence = 1")).rejects.toThrow(/only advances/);
    expect(await countRecords(pool, "sequence <= 6")).toBe(6);
  });

  it("names a record modified by a superuser as the first broken link", async () => {
    await asSuperuser(svc, `UPDATE audit_records SET payload_json = '{"name":"forged"}' WHERE sequence = 3`);
    const res = await admin().verifyChain({ startSequence: 1n, endSequence: 6n });
    expect(res).toMatchObject({
      ok: false,
      firstBrokenSequence: 3n,
      breakKind: ChainBreakKind.HASH_MISMATCH,
      recordsChecked: 3n,
    });
    expect(res.reason).toMatch(/^hash mismatch: stored [0-9a-f]{12}…, computed [0-9a-f]{12}…$/);
  });

  it("detects a re-hashed forgery at the next link, and a deleted record as a gap", async () => {
    await asSuperuser(
      svc,
      `UPDATE audit_records SET aggregate_id = 'forged',
         hash = encode(sha256(convert_to(hash, 'UTF8')), 'hex') WHERE sequence = 4`,
    );
    // sha256 of the hex text is not the record hash, so 4 itself is a mismatch; 5 links to the old hash.
    const from4 = await admin().verifyChain({ startSequence: 4n, endSequence: 6n });
    expect(from4).toMatchObject({
      ok: false,
      firstBrokenSequence: 4n,
      breakKind: ChainBreakKind.HASH_MISMATCH,
    });
    const from5 = await admin().verifyChain({ startSequence: 5n, endSequence: 6n });
    expect(from5).toMatchObject({
      ok: false,
      firstBrokenSequence: 5n,
      breakKind: ChainBreakKind.PREV_HASH_MISMATCH,
    });

    await asSuperuser(svc, "DELETE FROM audit_records WHERE sequence = 6");
    const tail = await admin().verifyChain({ startSequence: 6n });
    expect(tail).toMatchObject({
      ok: false,
      firstBrokenSequence: 6n,
      breakKind: ChainBreakKind.SEQUENCE_GAP,
    });
  });

  it("publishes each verification, and each break, into the trail itself", async () => {
    await eventually("verification events recorded", async () => {
      const res = await admin().queryAuditRecords({
        eventTypes: ["AuditChainBroken"],
        aggregateType: "audit_chain",
      });
      return res.auditRecords.length >= 4;
    });
    const broken = await admin().queryAuditRecords({ eventTypes: ["codex.events.v1.AuditChainBroken"] });
    const first = JSON.parse(broken.auditRecords[0]?.payloadJson ?? "{}");
    expect(first).toMatchObject({ first_broken_sequence: "3", break_kind: "CHAIN_BREAK_KIND_HASH_MISMATCH" });
    expect(broken.auditRecords[0]?.actor?.id).toBe(principals.admin.id);
  });

  it("requires a platform admin, and refuses reversed ranges", async () => {
    const owner = svc.client(AuditService, principals.owner("p"));
    await expect(owner.verifyChain({})).rejects.toMatchObject({ code: Code.PERMISSION_DENIED });
    await expect(svc.client(AuditService).verifyChain({})).rejects.toMatchObject({
      code: Code.UNAUTHENTICATED,
    });
    const err = await admin()
      .verifyChain({ startSequence: 5n, endSequence: 2n })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as ServiceError).code).toBe(Code.INVALID_ARGUMENT);
  });
});
