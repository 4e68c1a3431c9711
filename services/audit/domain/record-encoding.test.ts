import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { type AuditRecord, AuditRecordSchema } from "../../../gen/codex/audit/v1/audit_record_pb.js";
import { ActorSchema } from "../../../gen/codex/events/v1/envelope_pb.js";
import { canonicalBytes } from "./chain.js";
import { encodeForHash } from "./record-encoding.js";

/** A deterministic pseudo-random generator, so a failure reproduces. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

const SAMPLES = [
  "",
  "a",
  "codex.events.v1.RunCompleted",
  "ünïcødé",
  "日本語のテキスト",
  "emoji 🚀 and more",
  "lone \ud800 surrogate",
  "trailing \udfff",
  '{"key":"value with \\"quotes\\" and \\\\ backslash"}',
  "x".repeat(127),
  "y".repeat(128),
  "z".repeat(20_000),
  `${"é".repeat(70)}`,
  "\u0000nul",
];

function randomRecord(rnd: () => number): AuditRecord {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const str = () => (rnd() < 0.3 ? "" : pick(SAMPLES));
  const u64 = () => pick([0n, 1n, 127n, 128n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n]);
  const ts = () =>
    rnd() < 0.25
      ? undefined
      : {
          $typeName: "google.protobuf.Timestamp" as const,
          seconds: pick([0n, 1n, 1_700_000_000n, -62_135_596_800n, 253_402_300_799n, -1n]),
          nanos: pick([0, 1, 999_999_999, 123_456_000, -1]),
        };
  const r = create(AuditRecordSchema, {
    sequence: u64(),
    eventId: str(),
    eventType: str(),
    aggregateType: str(),
    aggregateId: str(),
    aggregateVersion: u64(),
    projectId: str(),
    correlationId: str(),
    causationId: str(),
    payloadJson: str(),
    prevHash: str(),
    hash: str(),
    source: str(),
    traceId: str(),
  });
  if (rnd() < 0.7) {
    r.actor = create(ActorSchema, {
      type: pick([0, 1, 2, 4, -3, 1_000]),
      id: rnd() < 0.5 ? "" : pick(SAMPLES),
      displayName: rnd() < 0.5 ? "" : pick(SAMPLES),
    });
  }
  const occurred = ts();
  if (occurred) r.occurredAt = occurred;
  const recorded = ts();
  if (recorded) r.recordedAt = recorded;
  return r;
}

describe("encodeForHash", () => {
  it("writes exactly what toBinary writes with hash cleared, for varied records", () => {
    const rnd = prng(20_261_127);
    for (let i = 0; i < 3_000; i++) {
      const r = randomRecord(rnd);
      const expected = toBinary(AuditRecordSchema, { ...r, hash: "" });
      const actual = encodeForHash(r);
      if (Buffer.compare(Buffer.from(expected), Buffer.from(actual)) !== 0) {
        expect({ record: r, bytes: Buffer.from(actual).toString("hex") }).toEqual({
          record: r,
          bytes: Buffer.from(expected).toString("hex"),
        });
      }
    }
  });

  it("writes empty sub-messages that are present, and nothing for absent ones", () => {
    const bare = create(AuditRecordSchema, {});
    expect(canonicalBytes(bare)).toEqual(new Uint8Array());
    const withEmpty = create(AuditRecordSchema, {
      actor: {},
      occurredAt: { seconds: 0n, nanos: 0 },
    });
    expect(Buffer.from(canonicalBytes(withEmpty)).toString("hex")).toBe("42005a00");
    expect(canonicalBytes(withEmpty)).toEqual(toBinary(AuditRecordSchema, withEmpty));
  });

  it("returns bytes that a later call does not overwrite (canonicalBytes)", () => {
    const a = create(AuditRecordSchema, { eventId: "a" });
    const first = canonicalBytes(a);
    canonicalBytes(create(AuditRecordSchema, { eventId: "b".repeat(10_000) }));
    expect(first).toEqual(toBinary(AuditRecordSchema, a));
  });
});
