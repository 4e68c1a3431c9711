import { createHash } from "node:crypto";
import { stableJson } from "./stable-json.js";

/**
 * Opaque page tokens: base64url of a keyset cursor plus a fingerprint of the request's
 * filters. Keyset pagination stays stable while rows are inserted; the fingerprint refuses a
 * token replayed with other filters, which would otherwise silently skip or repeat results.
 */
export type Cursor = readonly (string | number)[];

/** A short, stable fingerprint of the filters (page_size excluded: it may change between pages). */
export function filterFingerprint(filters: unknown): string {
  return createHash("sha256").update(stableJson(filters)).digest("base64url").slice(0, 16);
}

export function encodePageToken(cursor: Cursor, fingerprint: string): string {
  return Buffer.from(JSON.stringify({ k: cursor, f: fingerprint })).toString("base64url");
}

export type DecodedToken = { ok: true; cursor: Cursor | undefined } | { ok: false; problem: string };

/** Decodes a token for these filters; an empty token is the first page. */
export function decodePageToken(token: string, fingerprint: string, arity: number): DecodedToken {
  if (token === "") return { ok: true, cursor: undefined };
  let body: { k?: unknown; f?: unknown } | undefined;
  try {
    body = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { k?: unknown; f?: unknown };
  } catch {
    body = undefined;
  }
  const k = body?.k;
  const wellFormed =
    Array.isArray(k) && k.length === arity && k.every((x) => typeof x === "string" || typeof x === "number");
  if (!wellFormed || typeof body?.f !== "string") {
    return { ok: false, problem: "is malformed; pass next_page_token from a previous response unchanged" };
  }
  if (body.f !== fingerprint) {
    return {
      ok: false,
      problem: "was issued for different filters; keep every field but page_size unchanged",
    };
  }
  return { ok: true, cursor: k as Cursor };
}

/** Clamps a requested page size: 0 means the default, larger than max means max. */
export function pageSize(requested: number, fallback: number, max: number): number {
  if (requested <= 0) return fallback;
  return Math.min(requested, max);
}
