import { type FingerprintOptions, fingerprint } from "../crypto/fingerprint.js";

/**
 * Opaque page tokens for keyset pagination: base64url JSON of the last row's sort key (the
 * cursor) plus a fingerprint of the list's filters.
 *
 * Why keyset and not offset: lists change while they are paged; "after this key" never skips
 * or repeats a row, an offset does. Why the fingerprint: a token replayed with other filters
 * would silently return a page of a different result set, so it is refused instead. Tokens are
 * not signed: a forged cursor only moves within a result set the caller may read anyway, and
 * {@link CursorShape} keeps values of the wrong type from reaching SQL.
 */
export type Cursor = readonly (string | number)[];

/**
 * How a service's tokens are laid out. The defaults suit new lists; the options exist so a
 * service that already released tokens keeps accepting (and issuing) exactly those.
 */
export interface PageTokenFormat {
  /** How the filters are digested; default sorted keys, base64url. The digest is cut to 16 characters. */
  fingerprint?: Omit<FingerprintOptions, "length">;
  /**
   * Property names holding the cursor's values, in order (`["t", "i"]` gives `{"t":…,"i":…,"f":…}`);
   * default: the whole cursor as one array, `{"k":[…],"f":…}`.
   */
  cursorFields?: readonly string[];
  /**
   * Property name holding the fingerprint, written after the cursor; default `f`. (The audit
   * service released `{"v":1,"after":…,"q":…}`: cursor fields `["v", "after"]`, fingerprint `q`.)
   */
  fingerprintField?: string;
}

/** What a decoded cursor must look like, checked before it is handed out. */
export interface CursorShape {
  /** Exact number of values. */
  arity?: number;
  /** Further checks (types, formats) of the values. */
  valid?: (cursor: Cursor) => boolean;
}

export type DecodedPageToken =
  | { ok: true; cursor: Cursor | undefined }
  | { ok: false; reason: "malformed" | "other-filters"; problem: string };

/** Where {@link PageTokens.cursorOf} reports an unusable token (services' `Violations`). */
export interface ViolationSink {
  add(field: string, description: string): unknown;
}

/** Descriptions of the `page_token` field violation, as services have always sent them. */
export const PAGE_TOKEN_PROBLEMS = {
  malformed: "is malformed; pass next_page_token from a previous response unchanged",
  "other-filters": "was issued for different filters; keep every field but page_size unchanged",
} as const;

const FINGERPRINT_LENGTH = 16;
const FINGERPRINT_KEY = "f";
const CURSOR_KEY = "k";

/** Page tokens of one list request: issue and read tokens bound to these filters. */
export interface PageTokens {
  /** The filters' fingerprint carried in every token. */
  readonly fingerprint: string;
  /** The token of the page after `cursor`. */
  encode(cursor: Cursor): string;
  /** The cursor of a token; an empty token is the first page (`cursor` undefined). */
  decode(token: string, shape?: CursorShape): DecodedPageToken;
  /** Like {@link decode}, but reports a `page_token` violation and returns undefined when unusable. */
  cursorOf(token: string, violations: ViolationSink, shape?: CursorShape): Cursor | undefined;
}

/**
 * Page tokens bound to `filters`: everything in the request that selects or orders rows, but
 * not the page size (which may change between pages) nor the token itself.
 */
export function pageTokens(filters: unknown, format: PageTokenFormat = {}): PageTokens {
  const fp = fingerprint(filters, { ...format.fingerprint, length: FINGERPRINT_LENGTH });
  const fields = format.cursorFields;
  const fpKey = format.fingerprintField ?? FINGERPRINT_KEY;
  const decode = (token: string, shape: CursorShape = {}): DecodedPageToken => {
    if (token === "") return { ok: true, cursor: undefined };
    const body = parse(token);
    const cursor = body === undefined ? undefined : cursorIn(body, fields);
    if (
      body === undefined ||
      cursor === undefined ||
      !fits(cursor, shape) ||
      typeof body[fpKey] !== "string"
    ) {
      return refusal("malformed");
    }
    if (body[fpKey] !== fp) return refusal("other-filters");
    return { ok: true, cursor };
  };
  return {
    fingerprint: fp,
    encode(cursor) {
      const body: Record<string, unknown> = {};
      if (fields === undefined) body[CURSOR_KEY] = cursor;
      else for (const [i, name] of fields.entries()) body[name] = cursor[i];
      body[fpKey] = fp;
      return Buffer.from(JSON.stringify(body), "utf8").toString("base64url");
    },
    decode,
    cursorOf(token, violations, shape) {
      const decoded = decode(token, shape);
      if (decoded.ok) return decoded.cursor;
      violations.add("page_token", decoded.problem);
      return undefined;
    },
  };
}

function refusal(reason: "malformed" | "other-filters"): DecodedPageToken {
  return { ok: false, reason, problem: PAGE_TOKEN_PROBLEMS[reason] };
}

function parse(token: string): Record<string, unknown> | undefined {
  try {
    const body: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    return body !== null && typeof body === "object" && !Array.isArray(body)
      ? (body as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function cursorIn(body: Record<string, unknown>, fields: readonly string[] | undefined): Cursor | undefined {
  const values = fields === undefined ? body[CURSOR_KEY] : fields.map((name) => body[name]);
  if (!Array.isArray(values)) return undefined;
  return values.every((x) => typeof x === "string" || typeof x === "number") ? (values as Cursor) : undefined;
}

function fits(cursor: Cursor, shape: CursorShape): boolean {
  if (shape.arity !== undefined && cursor.length !== shape.arity) return false;
  return shape.valid === undefined || shape.valid(cursor);
}
