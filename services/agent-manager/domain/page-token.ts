/**
 * Opaque keyset page tokens bound to the filters they were issued for. Pure.
 *
 * Why keyset and not offset: lists are ordered by (time, id) or name and change while being
 * paged; a key never skips or repeats rows. The filter digest refuses a token replayed with
 * other filters, which would silently return a wrong page.
 */
import { createHash } from "node:crypto";

/** Digest of a request's filters (everything but page size and token). */
export function filterDigest(filters: unknown): string {
  return createHash("sha256")
    .update(JSON.stringify(filters, (_k, v) => (typeof v === "bigint" ? v.toString() : v)))
    .digest("base64url")
    .slice(0, 16);
}

export function encodePageToken(key: readonly string[], digest: string): string {
  return Buffer.from(JSON.stringify({ k: key, f: digest }), "utf8").toString("base64url");
}

/** The key of a token; undefined for an empty token; throws a message when it is invalid. */
export function decodePageToken(token: string, digest: string): string[] | undefined {
  if (token === "") return undefined;
  let parsed: { k?: unknown; f?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { k?: unknown; f?: unknown };
  } catch {
    throw new Error("is not a valid page token");
  }
  if (!Array.isArray(parsed.k) || !parsed.k.every((x) => typeof x === "string"))
    throw new Error("is not a valid page token");
  if (parsed.f !== digest) throw new Error("was issued for other filters");
  return parsed.k as string[];
}

/** Page size: 0 means `def`, values above `max` are `max`. */
export function pageSize(requested: number, def: number, max: number): number {
  if (requested <= 0) return def;
  return Math.min(requested, max);
}
