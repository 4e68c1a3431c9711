import { createHash } from "node:crypto";
import { toBinary } from "@bufbuild/protobuf";
import { type AuditRecord, AuditRecordSchema } from "../../../gen/codex/audit/v1/audit_record_pb.js";

/** prev_hash of the first record: 64 zeros. */
export const GENESIS_HASH = "0".repeat(64);

/**
 * The bytes a record's hash covers: its protobuf binary encoding with `hash` cleared.
 * protobuf-es writes fields in field-number order (AuditRecord declares them in that order)
 * and omits proto3 defaults, so any implementation holding the same field values produces the
 * same bytes; an external verifier needs nothing but the .proto file.
 */
export function canonicalBytes(record: AuditRecord): Uint8Array {
  return toBinary(AuditRecordSchema, { ...record, hash: "" });
}

/** Lowercase hex SHA-256 of {@link canonicalBytes}. */
export function computeHash(record: AuditRecord): string {
  return createHash("sha256").update(canonicalBytes(record)).digest("hex");
}

/** Shortens a hash for human-readable messages ("3fa1b2c4…"). */
export function shortHash(hash: string): string {
  return hash.length > 12 ? `${hash.slice(0, 12)}…` : hash;
}
