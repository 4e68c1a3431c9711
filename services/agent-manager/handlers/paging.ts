/**
 * Page tokens of ListRuns, ListInfoRequests and ListAgents, on mesh/pagination.
 *
 * The layout is the one this service has always released, so tokens clients hold keep working:
 * `{"k":[…],"f":…}` whose fingerprint is the base64url SHA-256 of the filters' JSON as given
 * (not key-sorted; bigints as decimal strings), cut to 16 characters. paging.test.ts pins it.
 */
import { invalidArgument } from "../../../mesh/errors.js";
import { type PageTokenFormat, pageTokens } from "../../../mesh/pagination/page-token.js";

export const PAGE_TOKEN_FORMAT: PageTokenFormat = { fingerprint: { keyOrder: "as-given" } };

/** The `page_token` violation descriptions this service has always sent. */
const PROBLEMS = {
  malformed: "is not a valid page token",
  "other-filters": "was issued for other filters",
} as const;

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
      if (decoded.ok) return decoded.cursor as readonly string[] | undefined;
      throw invalidArgument("invalid page_token", [
        { field: "page_token", description: PROBLEMS[decoded.reason] },
      ]);
    },
  };
}
