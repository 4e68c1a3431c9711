/** Small conversions between rows and protobuf well-known types. */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { DurationSchema } from "@bufbuild/protobuf/wkt";

/** A protobuf Duration of `ms` milliseconds. */
export function durationOf(ms: number): MessageInitShape<typeof DurationSchema> {
  const whole = Math.floor(ms / 1000);
  return { seconds: BigInt(whole), nanos: Math.round((ms - whole * 1000) * 1e6) };
}

/** Milliseconds of a protobuf Duration (0 when unset). */
export function msOf(d: { seconds: bigint; nanos: number } | undefined): number {
  return d === undefined ? 0 : Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6);
}

/** Timestamp ISO string with microseconds, as Postgres keeps it (for keyset page keys). */
export function isoOf(d: Date): string {
  return d.toISOString();
}
