import { createHash } from "node:crypto";
import { invalidArgument } from "../../../mesh/errors.js";

/**
 * Opaque keyset page tokens: base64url JSON of the cursor plus a fingerprint of the filters, so
 * a token replayed with other filters is refused instead of silently skipping rows.
 */
export function pageSize(requested: number): number {
  if (requested <= 0) return 50;
  return Math.min(requested, 500);
}

export function fingerprint(filters: unknown): string {
  const json = JSON.stringify(filters, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
  return createHash("sha256").update(json).digest("base64url").slice(0, 16);
}

export function encodeToken(cursor: string[], filters: unknown): string {
  return Buffer.from(JSON.stringify({ k: cursor, f: fingerprint(filters) })).toString("base64url");
}

/** The cursor of a token, undefined for the first page; INVALID_ARGUMENT when bad or mismatched. */
export function decodeToken(token: string, filters: unknown, arity: number): string[] | undefined {
  if (token === "") return undefined;
  let body: { k?: unknown; f?: unknown } | undefined;
  try {
    body = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { k?: unknown; f?: unknown };
  } catch {
    body = undefined;
  }
  const k = body?.k;
  if (
    !Array.isArray(k) ||
    k.length !== arity ||
    !k.every((x) => typeof x === "string") ||
    typeof body?.f !== "string"
  ) {
    throw invalidArgument("bad page token", [{ field: "page_token", description: "is malformed" }]);
  }
  if (body.f !== fingerprint(filters)) {
    throw invalidArgument("page token was issued for other filters", [
      { field: "page_token", description: "keep every field but page_size unchanged between pages" },
    ]);
  }
  return k as string[];
}

/** Parses a seq cursor (decimal bigint). */
export function seqOf(cursor: string[] | undefined): bigint | undefined {
  if (cursor === undefined) return undefined;
  const [s] = cursor;
  if (s === undefined || !/^\d+$/.test(s)) {
    throw invalidArgument("bad page token", [{ field: "page_token", description: "is malformed" }]);
  }
  return BigInt(s);
}
