import {
  type Cursor,
  type CursorShape,
  type PageTokenFormat,
  pageTokens,
} from "../../../mesh/pagination/page-token.js";
import { invalidArgument } from "../errors.js";

/** ListTasks and ListSagas page sizes. */
export const PAGE_SIZES = { default: 50, max: 500 } as const;

/**
 * The scheduler released its tokens with a hex fingerprint of the filters' JSON as given
 * (mesh defaults to base64url of key-sorted JSON); kept so tokens clients hold stay valid.
 */
const FORMAT: PageTokenFormat = { fingerprint: { encoding: "hex", keyOrder: "as-given" } };

/** Page tokens of one list request, bound to its filters (see mesh/pagination/page-token.ts). */
export function schedulerPageTokens(filters: unknown) {
  const pages = pageTokens(filters, FORMAT);
  return {
    encode: pages.encode,
    /** The cursor of a token (undefined for the first page); INVALID_ARGUMENT when unusable. */
    cursorOf(token: string, shape: CursorShape): Cursor | undefined {
      const decoded = pages.decode(token, shape);
      if (decoded.ok) return decoded.cursor;
      throw invalidArgument("invalid page_token", [
        { field: "page_token", description: "is not a token of a previous call with the same filters" },
      ]);
    },
  };
}
