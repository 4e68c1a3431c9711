/**
 * Page tokens of ListSubscriptions, ListDeliveries and ListDeadLetters, on mesh/pagination.
 *
 * Opaque keyset page tokens: base64url JSON of the cursor plus a fingerprint of the filters, so
 * a token replayed with other filters is refused instead of silently skipping rows.
 *
 * The layout is the one this service has always released, so tokens clients hold keep working:
 * `{"k":[…],"f":…}` whose fingerprint is the base64url SHA-256 of the filters' JSON as given
 * (not key-sorted; undefined members dropped; bigints as decimal strings), cut to 16 characters.
 * paging.test.ts pins it.
 */
import { invalidArgument } from "../../../mesh/errors.js";
import type { PageSizes } from "../../../mesh/pagination/page-size.js";
import { type PageTokenFormat, pageTokens } from "../../../mesh/pagination/page-token.js";

export const PAGE_TOKEN_FORMAT: PageTokenFormat = { fingerprint: { keyOrder: "as-given" } };

/** Every list's page sizes: 0 means 50, more than 500 is cut to 500. */
export const PAGE_SIZES: PageSizes = { default: 50, max: 500 };

/** The messages and `page_token` violation descriptions this service has always sent. */
const PROBLEMS = {
  malformed: { message: "bad page token", description: "is malformed" },
  "other-filters": {
    message: "page token was issued for other filters",
    description: "keep every field but page_size unchanged between pages",
  },
} as const;

function refuse(reason: keyof typeof PROBLEMS): never {
  const { message, description } = PROBLEMS[reason];
  throw invalidArgument(message, [{ field: "page_token", description }]);
}

/** Page tokens of one list request: `filters` is everything but the page size and token. */
export function listPageTokens(filters: unknown, keyLength: number) {
  const pages = pageTokens(filters, PAGE_TOKEN_FORMAT);
  return {
    /** next_page_token after the row with this sort key. */
    encode: (key: readonly string[]): string => pages.encode(key),
    /** The sort key a token resumes after; undefined for the first page; INVALID_ARGUMENT when unusable. */
    keyOf(token: string): readonly string[] | undefined {
      const decoded = pages.decode(token, {
        arity: keyLength,
        valid: (key) => key.every((x) => typeof x === "string"),
      });
      if (!decoded.ok) refuse(decoded.reason);
      return decoded.cursor as readonly string[] | undefined;
    },
  };
}

/** Parses a seq cursor (decimal bigint). */
export function seqOf(key: readonly string[] | undefined): bigint | undefined {
  if (key === undefined) return undefined;
  const [s] = key;
  if (s === undefined || !/^\d+$/.test(s)) refuse("malformed");
  return BigInt(s);
}
