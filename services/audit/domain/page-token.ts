import { createHash } from "node:crypto";
import type { RecordFilter } from "./filter.js";

/** Raised for a token that was not issued for this query; mapped to INVALID_ARGUMENT. */
export class BadPageTokenError extends Error {
  override readonly name = "BadPageTokenError";
}

interface TokenBody {
  v: 1;
  /** Sequence of the last record returned (keyset cursor). */
  after: string;
  /** Fingerprint of the filters and order the token belongs to. */
  q: string;
}

/**
 * Fingerprint of a query: a token carries it so that reusing a token with other filters is
 * refused instead of silently returning a page of a different result set.
 */
export function queryFingerprint(filter: RecordFilter, newestFirst: boolean): string {
  const canonical = JSON.stringify([filter, newestFirst], (_k, v: unknown) =>
    typeof v === "bigint" ? v.toString() : v,
  );
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

/**
 * Page tokens are keyset cursors (the last sequence returned), so paging is stable: records
 * appended meanwhile only ever show up after the cursor, never shift earlier pages.
 * Not a secret and not signed: a forged cursor only skips to another position of a result
 * set the caller is allowed to read anyway.
 */
export function encodePageToken(after: bigint, fingerprint: string): string {
  const body: TokenBody = { v: 1, after: after.toString(), q: fingerprint };
  return Buffer.from(JSON.stringify(body)).toString("base64url");
}

/** Decodes a token issued by {@link encodePageToken} for the same query fingerprint. */
export function decodePageToken(token: string, fingerprint: string): bigint {
  let body: Partial<TokenBody>;
  try {
    body = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as Partial<TokenBody>;
  } catch {
    throw new BadPageTokenError("page_token is malformed");
  }
  if (body.v !== 1 || typeof body.after !== "string" || !/^\d{1,19}$/.test(body.after)) {
    throw new BadPageTokenError("page_token is malformed");
  }
  if (body.q !== fingerprint) throw new BadPageTokenError("page_token belongs to a query with other filters");
  return BigInt(body.after);
}
