import { Composer, type CST, type ErrorCode, isScalar, Lexer, type ParsedNode, Parser } from "yaml";
import { scanCstDocument } from "./cst-scan.js";
import type { RecipeLimits } from "./limits.js";
import { pathAt } from "./path.js";
import type { ProblemCollector } from "./problems.js";

/**
 * Composer settings: YAML 1.2 core schema only (no `!!binary`, `!!set`, `<<` merges or
 * custom tags), duplicate keys are errors. Aliases are refused before composition (see
 * {@link loadRecipeYaml}), so the composer never builds an alias node that a later
 * `toJS()` could expand; `maxAliasCount` only guards `toJS()`, which this module never calls.
 */
const COMPOSE_OPTIONS = {
  version: "1.2",
  schema: "core",
  merge: false,
  uniqueKeys: true,
  strict: true,
  intAsBigInt: false,
  prettyErrors: false,
} as const;

/** Library diagnostics that our own CST checks already report in recipe terms. */
const COVERED_BY_CST_SCAN: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "BAD_ALIAS",
  "ALIAS_PROPS",
  "TAG_RESOLVE_FAILED",
  "BAD_DIRECTIVE",
  "MULTIPLE_ANCHORS",
  "MULTIPLE_TAGS",
]);

const WHY = {
  tag: "tags are not allowed in recipes; write plain or quoted values",
  anchor: "anchors (&name) are not allowed in recipes; recipes are small, repeat the value instead",
  alias: "aliases (*name) are not allowed in recipes; they are refused to rule out alias bombs",
} as const;

/**
 * Turns untrusted text into the single composed YAML node of a recipe, or `undefined`
 * after recording why not. Defences, in the order they act:
 * 1. the parser is driven one lexeme at a time and abandoned as soon as its open-node
 *    stack proves the nesting or a collection's length exceeds its limit (a 200k-deep
 *    `[[[[` costs ~35 lexemes, a 100k-entry list ~1000);
 * 2. the CST is scanned for directives, tags, anchors, aliases and exact depth;
 * 3. only the first document is composed, with the strict options above.
 * The byte-size limit is checked by the caller, before this runs.
 */
export function loadRecipeYaml(
  text: string,
  limits: RecipeLimits,
  problems: ProblemCollector,
): ParsedNode | undefined {
  const tokens = tokenize(text, limits, problems);
  if (!tokens) return undefined;

  const documents = tokens.filter((t): t is CST.Document => t.type === "document");
  for (const t of tokens) {
    if (t.type === "directive") problems.add("", t.offset, "YAML directives (%YAML, %TAG) are not allowed");
  }
  const first = documents[0];
  const second = documents[1];
  if (second) {
    problems.add(
      "",
      second.offset,
      `a recipe is a single YAML document; found ${documents.length} (remove the extra "---")`,
    );
  }
  if (!first) {
    problems.add("", 0, "recipe is empty; expected a map with tools and steps");
    return undefined;
  }

  const { findings, tooDeepAt } = scanCstDocument(first, limits.maxDepth);
  if (tooDeepAt !== undefined) {
    problems.add("", tooDeepAt, `nesting is deeper than ${limits.maxDepth} levels`);
    return undefined;
  }

  const doc = composeFirst(tokens, second, text.length);
  const contents = doc?.contents ?? null;
  for (const f of findings) {
    if (problems.full) break;
    problems.add(
      pathAt(contents, f.ownerOffset),
      f.offset,
      `${WHY[f.kind]} (found ${f.source.slice(0, 40)})`,
    );
  }
  for (const e of doc?.errors ?? []) {
    if (problems.full) break;
    if (COVERED_BY_CST_SCAN.has(e.code)) continue;
    const path = pathAt(contents, e.pos[0]);
    const message = e.code === "DUPLICATE_KEY" ? "duplicate key; each key may appear only once" : e.message;
    problems.add(path, e.pos[0], message);
  }
  if (contents === null || (isScalar(contents) && contents.value === null)) {
    problems.add("", first.offset, "recipe is empty; expected a map with tools and steps");
    return undefined;
  }
  return contents;
}

/**
 * Composes the tokens of the first document only; later documents are already refused.
 *
 * The composer reports each problem as a `YAMLParseError`, and capturing a stack trace for
 * each is most of its cost on hostile input (90 maps of 500 duplicate keys: ~45k errors,
 * ~4x slower with traces). The traces are never used, so capture is switched off for this
 * synchronous call and restored before returning.
 */
function composeFirst(tokens: readonly CST.Token[], stopAt: CST.Token | undefined, textLength: number) {
  const traceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    const composer = new Composer(COMPOSE_OPTIONS);
    const docs = [];
    for (const t of tokens) {
      if (t === stopAt) break;
      docs.push(...composer.next(t));
    }
    docs.push(...composer.end(false, stopAt?.offset ?? textLength));
    return docs[0];
  } finally {
    Error.stackTraceLimit = traceLimit;
  }
}

/**
 * Lexes and parses with two tripwires checked after every lexeme, so oversized structure is
 * refused after reading only as much of it as proves the point:
 * - depth: the parser's `stack` holds the document, every open collection and possibly one
 *   scalar, so `stack.length - 2` never overstates the collection depth;
 * - breadth: entries are only ever added to the innermost open collections, the top of the
 *   stack, so checking the last few stack entries catches a list or map as it grows too long.
 */
function tokenize(text: string, limits: RecipeLimits, problems: ProblemCollector): CST.Token[] | undefined {
  const parser = new Parser(problems.lines.addNewLine);
  const tokens: CST.Token[] = [];
  for (const lexeme of new Lexer().lex(text)) {
    for (const token of parser.next(lexeme)) tokens.push(token);
    const { stack } = parser;
    if (stack.length - 2 > limits.maxDepth) {
      problems.add("", parser.offset, `nesting is deeper than ${limits.maxDepth} levels`);
      return undefined;
    }
    for (let i = stack.length - 1; i >= 0 && i >= stack.length - 3; i--) {
      const open = stack[i];
      if (open && "items" in open && open.items.length > limits.maxEntries) {
        problems.add("", open.offset, `a list or map has more than ${limits.maxEntries} entries`);
        return undefined;
      }
    }
  }
  for (const token of parser.end()) tokens.push(token);
  return tokens;
}
