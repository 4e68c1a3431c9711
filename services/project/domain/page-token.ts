import { createHash } from "node:crypto";
import type { Violations } from "./validation.js";

/**
 * Opaque page tokens: base64url of a keyset cursor plus a fingerprint of the request's
 * filters. Keyset (not offset) pagination stays stable while rows are inserted; the
 * fingerprint lets us refuse a token replayed with different filters, which would
 * otherwise silently skip or repeat results.
 */
export type Cursor = readonly (string | number)[];

interface TokenBody {
  k: Cursor;
  f: string;
}

/** A short, stable fingerprint of the filters (page_size excluded: it may change between pages). */
export function filterFingerprint(filters: unknown): string {
  return createHash("sha256").update(stableJson(filters)).digest("base64url").slice(0, 16);
}

export function encodePageToken(cursor: Cursor, fingerprint: string): string {
  const body: TokenBody = { k: cursor, f: fingerprint };
  return Buffer.from(JSON.stringify(body)).toString("base64url");
}

/**
 * Decodes a token for these filters; records a `page_token` violation and returns
 * undefined when it is malformed (`valid` checks the cursor's shape, so a forged token
 * cannot reach SQL with a value of the wrong type) or was issued for other filters. An empty token is the
 * first page (returns undefined without a violation).
 */
export function decodePageToken(
  v: Violations,
  token: string,
  fingerprint: string,
  valid: (cursor: Cursor) => boolean,
): Cursor | undefined {
  if (token === "") return undefined;
  let body: Partial<TokenBody> | undefined;
  try {
    body = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as Partial<TokenBody>;
  } catch {
    body = undefined;
  }
  const k = body?.k;
  const ok = Array.isArray(k) && k.every((x) => typeof x === "string" || typeof x === "number") && valid(k);
  if (!ok || typeof body?.f !== "string") {
    v.add("page_token", "is malformed; pass next_page_token from a previous response unchanged");
    return undefined;
  }
  if (body.f !== fingerprint) {
    v.add("page_token", "was issued for different filters; keep every field but page_size unchanged");
    return undefined;
  }
  return k;
}

/** JSON with object keys sorted, so equal filters always give the same fingerprint. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(typeof value === "bigint" ? value.toString() : value) ?? "null";
}
