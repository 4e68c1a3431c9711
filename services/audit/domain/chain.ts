import { hash } from "node:crypto";
import type { AuditRecord } from "../../../gen/codex/audit/v1/audit_record_pb.js";
import { encodeForHash } from "./record-encoding.js";

/** prev_hash of the first record: 64 zeros. */
export const GENESIS_HASH = "0".repeat(64);

/**
 * The bytes a record's hash covers: its protobuf binary encoding with `hash` cleared.
 * protobuf-es writes fields in field-number order (AuditRecord declares them in that order)
 * and omits proto3 defaults, so any implementation holding the same field values produces the
 * same bytes; an external verifier needs nothing but the .proto file. (Written by a dedicated
 * encoder for speed, see record-encoding.ts; a test holds it to toBinary's output.)
 */
export function canonicalBytes(record: AuditRecord): Uint8Array {
  return Uint8Array.from(encodeForHash(record));
}

/** Lowercase hex SHA-256 of {@link canonicalBytes}. */
export function computeHash(record: AuditRecord): string {
  return hash("sha256", encodeForHash(record), "hex"); // one-shot: no Hash object per record
}

/** Shortens a hash for human-readable messages ("3fa1b2c4…"). */
export function shortHash(hash: string): string {
  return hash.length > 12 ? `${hash.slice(0, 12)}…` : hash;
}
