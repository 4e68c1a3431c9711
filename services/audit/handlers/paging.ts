/**
 * QueryAuditRecords page tokens, on mesh/pagination.
 *
 * Page tokens are keyset cursors (the last sequence returned), so paging is stable: records
 * appended meanwhile only ever show up after the cursor, never shift earlier pages. Not a
 * secret and not signed: a forged cursor only skips to another position of a result set the
 * caller is allowed to read anyway.
 *
 * The layout is the one this service has always released, so tokens clients hold keep working:
 * `{"v":1,"after":"<sequence>","q":…}` whose fingerprint `q` is the hex SHA-256 of
 * `[filter, newestFirst]` as JSON as given (bigints as decimal strings), cut to 16 characters.
 * The version `v` travels as the cursor's first value. paging.test.ts pins it.
 */
import { invalidArgument } from "../../../mesh/errors.js";
import { type PageTokenFormat, pageTokens } from "../../../mesh/pagination/page-token.js";
import type { RecordFilter } from "../domain/filter.js";

export const PAGE_TOKEN_FORMAT: PageTokenFormat = {
  fingerprint: { encoding: "hex", keyOrder: "as-given" },
  cursorFields: ["v", "after"],
  fingerprintField: "q",
};

const VERSION = 1;
const SEQUENCE = /^\d{1,19}$/;

/** The messages (and `page_token` violation descriptions) this service has always sent. */
const PROBLEMS = {
  malformed: "page_token is malformed",
  "other-filters": "page_token belongs to a query with other filters",
} as const;

/** Page tokens of one query: its filters and order, a token refused with other ones. */
export function queryPageTokens(filter: RecordFilter, newestFirst: boolean) {
  const pages = pageTokens([filter, newestFirst], PAGE_TOKEN_FORMAT);
  return {
    /** next_page_token after the record with this sequence. */
    encode: (after: bigint): string => pages.encode([VERSION, after.toString()]),
    /** The sequence a token resumes after; undefined for the first page; INVALID_ARGUMENT when unusable. */
    afterOf(token: string): bigint | undefined {
      const decoded = pages.decode(token, {
        valid: ([v, after]) => v === VERSION && typeof after === "string" && SEQUENCE.test(after),
      });
      if (!decoded.ok) {
        const problem = PROBLEMS[decoded.reason];
        throw invalidArgument(problem, [{ field: "page_token", description: problem }]);
      }
      return decoded.cursor === undefined ? undefined : BigInt(decoded.cursor[1] as string);
    },
  };
}
