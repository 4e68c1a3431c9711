import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { AuditRecord } from "../../../gen/codex/audit/v1/audit_record_pb.js";
import type { Actor } from "../../../gen/codex/events/v1/envelope_pb.js";

/**
 * The protobuf binary encoding of an AuditRecord with `hash` cleared: byte for byte what
 * protobuf-es `toBinary(AuditRecordSchema, { ...record, hash: "" })` writes (fields in number
 * order, proto3 defaults omitted, present sub-messages written even when empty), minus unknown
 * fields, which the trail does not store and so could never verify.
 *
 * Why by hand: every append and every verification hashes every record, and the reflective
 * encoder spent most of the audit service's per-event CPU on it (a TextEncoder call and a chunk
 * per string, a reflection object per message). This writes into one reusable buffer, copying
 * ASCII strings with a plain loop. A unit test compares it with toBinary on varied records.
 *
 * The returned view is only valid until the next call (the buffer is reused).
 */
export function encodeForHash(r: AuditRecord): Uint8Array {
  const w = writer;
  w.pos = 0;
  if (r.sequence !== 0n) w.varint64(tag(1, VARINT), r.sequence);
  w.string(2, r.eventId);
  w.string(3, r.eventType);
  w.string(4, r.aggregateType);
  w.string(5, r.aggregateId);
  if (r.aggregateVersion !== 0n) w.varint64(tag(6, VARINT), r.aggregateVersion);
  w.string(7, r.projectId);
  if (r.actor !== undefined) w.message(8, writeActor, r.actor);
  w.string(9, r.correlationId);
  w.string(10, r.causationId);
  if (r.occurredAt !== undefined) w.message(11, writeTimestamp, r.occurredAt);
  if (r.recordedAt !== undefined) w.message(12, writeTimestamp, r.recordedAt);
  w.string(13, r.payloadJson);
  w.string(14, r.prevHash);
  // 15: hash, cleared
  w.string(16, r.source);
  w.string(17, r.traceId);
  return w.buf.subarray(0, w.pos);
}

const VARINT = 0;
const LENGTH_DELIMITED = 2;
const tag = (field: number, wireType: number) => (field << 3) | wireType;

function writeActor(w: Writer, a: Actor): void {
  if (a.type !== 0) w.int32(tag(1, VARINT), a.type);
  w.string(2, a.id);
  w.string(3, a.displayName);
}

function writeTimestamp(w: Writer, t: Timestamp): void {
  if (t.seconds !== 0n) w.varint64(tag(1, VARINT), BigInt.asUintN(64, t.seconds));
  if (t.nanos !== 0) w.int32(tag(2, VARINT), t.nanos);
}

const TWO_POW_53 = 2n ** 53n;

class Writer {
  buf = Buffer.allocUnsafe(4096);
  pos = 0;

  ensure(more: number): void {
    if (this.pos + more <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + more));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  /** An unsigned varint below 2^53. */
  varint(n: number): void {
    this.ensure(8);
    const b = this.buf;
    while (n > 0x7f) {
      b[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    b[this.pos++] = n;
  }

  /** A tag and an unsigned 64-bit varint (uint64; int64 passed through BigInt.asUintN). */
  varint64(tagValue: number, v: bigint): void {
    this.varint(tagValue);
    if (v < TWO_POW_53) {
      this.varint(Number(v));
      return;
    }
    this.ensure(10);
    while (v > 0x7fn) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  /** A tag and an int32 (negative ones sign-extended to ten bytes, as protobuf does). */
  int32(tagValue: number, n: number): void {
    if (n >= 0) {
      this.varint(tagValue);
      this.varint(n);
    } else {
      this.varint64(tagValue, BigInt.asUintN(64, BigInt(n)));
    }
  }

  /** A non-empty string field: tag, UTF-8 length, UTF-8 bytes (lone surrogates become U+FFFD). */
  string(field: number, s: string): void {
    if (s === "") return;
    this.varint(tag(field, LENGTH_DELIMITED));
    const start = this.pos;
    const n = s.length;
    this.varint(n);
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) {
        this.pos = start;
        this.#nonAscii(s);
        return;
      }
      b[p++] = c;
    }
    this.pos = p;
  }

  #nonAscii(s: string): void {
    const bytes = Buffer.byteLength(s, "utf8");
    this.varint(bytes);
    this.ensure(bytes);
    this.pos += this.buf.write(s, this.pos, "utf8");
  }

  /** A present sub-message: tag, length, fields. */
  message<T>(field: number, write: (w: Writer, m: T) => void, m: T): void {
    this.varint(tag(field, LENGTH_DELIMITED));
    this.ensure(1);
    const lengthAt = this.pos;
    this.pos += 1; // room for a one-byte length, the usual case
    write(this, m);
    const length = this.pos - lengthAt - 1;
    if (length < 0x80) {
      this.buf[lengthAt] = length;
      return;
    }
    const body = Buffer.from(this.buf.subarray(lengthAt + 1, this.pos));
    this.pos = lengthAt;
    this.varint(length);
    this.ensure(length);
    this.pos += body.copy(this.buf, this.pos);
  }
}

const writer = new Writer();
