import { createHash } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { type AuditRecord, AuditRecordSchema } from "../../../gen/codex/audit/v1/audit_record_pb.js";
import { ChainBreakKind } from "../../../gen/codex/audit/v1/audit_service_pb.js";
import { computeHash, GENESIS_HASH } from "./chain.js";
import { ChainVerifier } from "./verify.js";

function chain(n: number): AuditRecord[] {
  const out: AuditRecord[] = [];
  let prev = GENESIS_HASH;
  for (let i = 1; i <= n; i++) {
    const r = create(AuditRecordSchema, {
      sequence: BigInt(i),
      eventId: `e${i}`,
      eventType: "codex.events.v1.ProjectCreated",
      payloadJson: JSON.stringify({ n: i }),
      recordedAt: timestampFromMs(1_700_000_000_000 + i),
      prevHash: prev,
    });
    r.hash = computeHash(r);
    prev = r.hash;
    out.push(r);
  }
  return out;
}

function verify(records: AuditRecord[], end = BigInt(records.length)) {
  const v = new ChainVerifier(1n, GENESIS_HASH);
  for (const r of records) {
    const b = v.check(r);
    if (b) return { b, v };
  }
  return { b: v.finish(end), v };
}

describe("hash chain", () => {
  it("hashes the protobuf encoding with hash cleared, as an outside verifier would", () => {
    const [r] = chain(1);
    const bytes = toBinary(AuditRecordSchema, { ...r!, hash: "" });
    expect(r!.hash).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect(r!.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(r!.prevHash).toBe("0".repeat(64));
  });

  it("changes the hash when any field changes", () => {
    const [r] = chain(1);
    expect(computeHash({ ...r!, payloadJson: '{"n":2}' })).not.toBe(r!.hash);
    expect(computeHash({ ...r!, aggregateVersion: 1n })).not.toBe(r!.hash);
  });

  it("accepts an intact chain", () => {
    const { b, v } = verify(chain(5));
    expect(b).toBeUndefined();
    expect(v.checked).toBe(5n);
    expect(v.lastSequence).toBe(5n);
  });

  it("names a modified record (HASH_MISMATCH)", () => {
    const records = chain(5);
    records[2] = { ...records[2]!, payloadJson: '{"n":"forged"}' };
    const { b, v } = verify(records);
    expect(b).toMatchObject({ sequence: 3n, kind: ChainBreakKind.HASH_MISMATCH });
    expect(b?.reason).toMatch(/^hash mismatch: stored [0-9a-f]{12}…, computed [0-9a-f]{12}…$/);
    expect(v.checked).toBe(3n);
  });

  it("names the successor of a modified and re-hashed record (PREV_HASH_MISMATCH)", () => {
    const records = chain(5);
    const forged = { ...records[1]!, payloadJson: '{"n":"forged"}' };
    forged.hash = computeHash(forged);
    records[1] = forged;
    expect(verify(records).b).toMatchObject({ sequence: 3n, kind: ChainBreakKind.PREV_HASH_MISMATCH });
  });

  it("names a deleted record (SEQUENCE_GAP), inside the range and at its end", () => {
    const records = chain(5);
    expect(verify([...records.slice(0, 2), ...records.slice(3)]).b).toMatchObject({
      sequence: 3n,
      kind: ChainBreakKind.SEQUENCE_GAP,
    });
    expect(verify(records.slice(0, 4), 5n).b).toMatchObject({
      sequence: 5n,
      kind: ChainBreakKind.SEQUENCE_GAP,
    });
  });
});
