import { create } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema, timestampFromMs } from "@bufbuild/protobuf/wkt";

/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range google.protobuf.Timestamp allows. */
const MIN_SECONDS = -62_135_596_800n;
const MAX_SECONDS = 253_402_300_799n;

/** Whether a Timestamp is within the range and nanosecond bounds the proto documents. */
export function isValidTimestamp(ts: Timestamp): boolean {
  return ts.seconds >= MIN_SECONDS && ts.seconds <= MAX_SECONDS && ts.nanos >= 0 && ts.nanos <= 999_999_999;
}

/**
 * A Timestamp split for PostgreSQL, whose timestamptz keeps microseconds: the RFC 3339 text
 * truncated to microseconds (so the database never rounds), plus the nanoseconds below the
 * microsecond. Together they restore the Timestamp exactly, which the hash chain requires.
 */
export interface PgTimestamp {
  text: string;
  subMicroNanos: number;
}

/** Splits a (valid) Timestamp for storage; see {@link PgTimestamp}. */
export function toPgTimestamp(ts: Timestamp): PgTimestamp {
  const base = new Date(Number(ts.seconds) * 1000).toISOString().slice(0, 19);
  const micros = Math.floor(ts.nanos / 1000);
  return { text: `${base}.${String(micros).padStart(6, "0")}Z`, subMicroNanos: ts.nanos % 1000 };
}

/** Rebuilds a Timestamp from whole epoch seconds, microseconds within the second and the rest. */
export function fromPgParts(seconds: bigint, micros: number, subMicroNanos: number): Timestamp {
  return create(TimestampSchema, { seconds, nanos: micros * 1000 + subMicroNanos });
}

/** The current time as a Timestamp with millisecond precision (what JavaScript's clock has). */
export function nowTimestamp(nowMs: number = Date.now()): Timestamp {
  return timestampFromMs(nowMs);
}

/** Compares two Timestamps: negative when a is earlier. */
export function compareTimestamps(a: Timestamp, b: Timestamp): number {
  if (a.seconds !== b.seconds) return a.seconds < b.seconds ? -1 : 1;
  return a.nanos - b.nanos;
}
