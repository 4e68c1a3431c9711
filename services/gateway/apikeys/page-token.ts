/**
 * ListApiKeys page tokens: base64url of the last row's (create_time, id) keyset cursor and a
 * fingerprint of the filters, so a token replayed with other filters is refused instead of
 * silently skipping or repeating keys.
 */
import { createHash } from "node:crypto";
import type { Violations } from "./validation.js";

export interface Cursor {
  createTime: Date;
  id: string;
}

export function fingerprint(filters: readonly unknown[]): string {
  return createHash("sha256").update(JSON.stringify(filters)).digest("base64url").slice(0, 16);
}

export function encodeToken(cursor: Cursor, fp: string): string {
  return Buffer.from(JSON.stringify({ t: cursor.createTime.toISOString(), i: cursor.id, f: fp })).toString(
    "base64url",
  );
}

/** The cursor of a token, or undefined for the first page; records a violation when unusable. */
export function decodeToken(v: Violations, token: string, fp: string): Cursor | undefined {
  if (token === "") return undefined;
  let body: { t?: unknown; i?: unknown; f?: unknown } | undefined;
  try {
    body = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as typeof body;
  } catch {
    body = undefined;
  }
  const time = typeof body?.t === "string" ? new Date(body.t) : undefined;
  const id = typeof body?.i === "string" && /^[0-9a-f-]{36}$/.test(body.i) ? body.i : undefined;
  if (!time || Number.isNaN(time.getTime()) || !id || typeof body?.f !== "string") {
    v.add("page_token", "is malformed; pass next_page_token from a previous response unchanged");
    return undefined;
  }
  if (body.f !== fp) {
    v.add("page_token", "was issued for different filters; keep every field but page_size unchanged");
    return undefined;
  }
  return { createTime: time, id };
}
