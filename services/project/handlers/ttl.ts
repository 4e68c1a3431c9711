import type { Duration } from "@bufbuild/protobuf/wkt";
import { LIMITS } from "../domain/limits.js";
import type { Violations } from "../domain/validation.js";

/** The reservation TTL in ms: 6 h when unset, otherwise 1 minute to 48 hours (quota.proto). */
export function ttlMs(v: Violations, ttl: Duration | undefined): number {
  if (!ttl) return LIMITS.ttlDefaultMs;
  const { seconds, nanos } = ttl;
  if (
    nanos < -999_999_999 ||
    nanos > 999_999_999 ||
    (seconds > 0n && nanos < 0) ||
    (seconds < 0n && nanos > 0)
  ) {
    v.add("ttl", "is not a valid duration");
    return 0;
  }
  const ms = Number(seconds) * 1000 + Math.trunc(nanos / 1e6);
  if (ms < LIMITS.ttlMinMs || ms > LIMITS.ttlMaxMs) v.add("ttl", "must be between 1 minute and 48 hours");
  return ms;
}
