import { invalidArgument } from "../errors.js";
import { requestHash } from "../store/idempotency.js";

/**
 * Keyset page tokens: the sort key of the last row returned plus a hash of the filters, so a
 * token replayed with other filters is refused instead of returning a skewed page.
 */
export function encodePageToken(filters: unknown, key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify({ f: requestHash(filters).slice(0, 16), k: key })).toString("base64url");
}

export function decodePageToken(token: string, filters: unknown): (string | number)[] | undefined {
  if (token === "") return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as {
      f?: unknown;
      k?: unknown;
    };
    if (parsed.f === requestHash(filters).slice(0, 16) && Array.isArray(parsed.k))
      return parsed.k as (string | number)[];
  } catch {
    // fall through
  }
  throw invalidArgument("invalid page_token", [
    { field: "page_token", description: "is not a token of a previous call with the same filters" },
  ]);
}

export function pageSize(requested: number): number {
  if (requested <= 0) return 50;
  return Math.min(requested, 500);
}
