/**
 * `google.api.http` path templates, as grpc-gateway reads them:
 *
 *   Template = "/" Segments [ Verb ] ;   Segments = Segment { "/" Segment } ;
 *   Segment  = "*" | "**" | LITERAL | Variable ;   Variable = "{" FieldPath [ "=" Segments ] "}" ;
 *   Verb     = ":" LITERAL ;
 *
 * `{project_id}` is `{project_id=*}` (one segment); `{name=projects/*}` binds several segments;
 * `**` matches the rest of the path. Matching is on percent-decoded segments.
 */

type Segment = { kind: "literal"; value: string } | { kind: "one" } | { kind: "rest" };

/** A variable binds the segments [start, end) (end undefined: to the end of the path). */
interface Variable {
  readonly fieldPath: string;
  readonly start: number;
  readonly end: number | undefined;
}

/** A parsed template, ready to match paths. */
export interface PathTemplate {
  readonly source: string;
  readonly segments: readonly Segment[];
  readonly variables: readonly Variable[];
  readonly verb: string | undefined;
}

const FIELD_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/** Parses a template; throws on syntax the grammar does not allow (a bug in a proto annotation). */
export function parseTemplate(source: string): PathTemplate {
  if (!source.startsWith("/")) throw new Error(`path template must start with "/": ${source}`);
  let body = source.slice(1);
  let verb: string | undefined;
  const colon = verbColon(body);
  if (colon >= 0) {
    verb = body.slice(colon + 1);
    body = body.slice(0, colon);
  }
  const segments: Segment[] = [];
  const variables: Variable[] = [];
  for (const part of splitTopLevel(body)) {
    if (part.startsWith("{")) {
      if (!part.endsWith("}")) throw new Error(`unclosed variable in ${source}`);
      const inner = part.slice(1, -1);
      const eq = inner.indexOf("=");
      const fieldPath = eq < 0 ? inner : inner.slice(0, eq);
      if (!FIELD_PATH.test(fieldPath)) throw new Error(`bad field path "${fieldPath}" in ${source}`);
      const start = segments.length;
      const pattern = eq < 0 ? ["*"] : inner.slice(eq + 1).split("/");
      for (const p of pattern) segments.push(segmentOf(p, source));
      const deep = segments.at(-1)?.kind === "rest";
      variables.push({ fieldPath, start, end: deep ? undefined : segments.length });
    } else {
      segments.push(segmentOf(part, source));
    }
  }
  if (segments.slice(0, -1).some((s) => s.kind === "rest")) throw new Error(`"**" must be last in ${source}`);
  return { source, segments, variables, verb };
}

/**
 * A request path split once into segments, for matching it against many templates (the router
 * tries every endpoint): splitting and percent-decoding per template was the REST door's
 * largest routing cost.
 */
export interface SplitPath {
  /** Segments as sent (undefined: the path does not start with "/"). */
  readonly raw: readonly string[] | undefined;
  /** Percent-decoded segments; undefined where a segment cannot be decoded. */
  readonly decoded: readonly (string | undefined)[];
  /** Whether every segment but the last decoded (the last may lose a verb first). */
  readonly headDecoded: boolean;
}

/** Splits a request path (no query string) for {@link matchSplit}. */
export function splitPath(path: string): SplitPath {
  if (!path.startsWith("/")) return { raw: undefined, decoded: [], headDecoded: false };
  const raw = path.slice(1).split("/");
  const decoded = raw.map(decode);
  let headDecoded = true;
  for (let i = 0; i < decoded.length - 1; i++) if (decoded[i] === undefined) headDecoded = false;
  return { raw, decoded, headDecoded };
}

/**
 * Matches a request path (no query string). Returns the bound variables by field path, or
 * undefined when the path does not match.
 */
export function matchTemplate(t: PathTemplate, path: string): Record<string, string> | undefined {
  return matchSplit(t, splitPath(path));
}

/** {@link matchTemplate} on a path split once by {@link splitPath}. */
export function matchSplit(t: PathTemplate, path: SplitPath): Record<string, string> | undefined {
  const raw = path.raw;
  if (raw === undefined || !path.headDecoded) return undefined;
  const n = raw.length;
  const segments = t.segments;
  const deep = segments.at(-1)?.kind === "rest";
  if (deep ? n < segments.length - 1 : n !== segments.length) return undefined;
  // Allocation-free until a match: the router tries every endpoint for each request.
  const decoded = path.decoded;
  let last = decoded[n - 1];
  if (t.verb !== undefined) {
    // The verb ends the last segment, and is matched before decoding, as sent.
    const lastRaw = raw[n - 1]!;
    const cut = lastRaw.length - t.verb.length - 1;
    if (cut < 0 || lastRaw.charCodeAt(cut) !== 58 /* ":" */ || !lastRaw.endsWith(t.verb)) return undefined;
    last = decode(lastRaw.slice(0, cut));
  }
  if (last === undefined) return undefined;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg.kind === "rest") break;
    const p = i === n - 1 ? last : decoded[i]!;
    if (seg.kind === "literal" ? p !== seg.value : p === "") return undefined;
  }
  const bound: Record<string, string> = {};
  for (const v of t.variables) {
    const end = v.end ?? n;
    let value = "";
    for (let i = v.start; i < end; i++) {
      const p = i === n - 1 ? last : decoded[i]!;
      value = i === v.start ? p : `${value}/${p}`;
    }
    bound[v.fieldPath] = value;
  }
  return bound;
}

function decode(segment: string): string | undefined {
  if (!segment.includes("%")) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** How specific a template is: more literal segments first, then a verb, then fewer wildcards. */
export function specificity(t: PathTemplate): number {
  const literals = t.segments.filter((s) => s.kind === "literal").length;
  const deep = t.segments.some((s) => s.kind === "rest") ? 1 : 0;
  return literals * 100 + (t.verb === undefined ? 0 : 10) - deep;
}

function segmentOf(part: string, source: string): Segment {
  if (part === "*") return { kind: "one" };
  if (part === "**") return { kind: "rest" };
  if (part === "" || /[{}*]/.test(part)) throw new Error(`bad segment "${part}" in ${source}`);
  return { kind: "literal", value: part };
}

/** Index of the verb's colon: the last one outside braces and after the last "/". */
function verbColon(body: string): number {
  let depth = 0;
  let found = -1;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === "{") depth++;
    else if (c === "}") depth--;
    else if (c === "/" && depth === 0) found = -1;
    else if (c === ":" && depth === 0) found = i;
  }
  return found;
}

/** Splits on "/" outside braces (a variable's own pattern may contain "/"). */
function splitTopLevel(body: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === "{") depth++;
    else if (c === "}") depth--;
    else if (c === "/" && depth === 0) {
      out.push(body.slice(start, i));
      start = i + 1;
    }
  }
  out.push(body.slice(start));
  return out;
}
