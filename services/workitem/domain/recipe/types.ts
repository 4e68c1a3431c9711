/**
 * The shapes a tool recipe takes once it has been accepted, and the shape of the
 * complaints when it has not. Kept free of YAML types so that the store, the
 * scheduler and the agent protocol can depend on them without pulling in a parser.
 */

/** A pinned tool the agent must provide (or install) before running the steps. */
export interface Tool {
  readonly name: string;
  readonly version: string;
  /** `sha256:` followed by 64 lowercase hex digits; the agent verifies the download against it. */
  readonly checksum: string;
  readonly env: Readonly<Record<string, string>>;
  /**
   * Whether the tool needs network access while the steps run. Defaults to `false` so that
   * network use is always an explicit, reviewable statement (it feeds risk assessment).
   */
  readonly network: boolean;
}

/** One command of the recipe. A bare shell string in YAML becomes `{ run, env: {} }`. */
export interface Step {
  readonly run: string;
  readonly env: Readonly<Record<string, string>>;
  /** Present only when the recipe sets a timeout; the scheduler applies its default otherwise. */
  readonly timeoutMs?: number;
  /** Normalised relative path (no `.` or empty segments); present only when the recipe sets it. */
  readonly cwd?: string;
}

/** A recipe that passed every check. */
export interface ParsedRecipe {
  readonly tools: readonly Tool[];
  readonly steps: readonly Step[];
}

/**
 * One reason a recipe was refused. `path` uses the recipe's own vocabulary
 * (`tools[1].checksum`, `steps[0].timeout`, `tools[0].env.HOME`); the empty path means
 * the document as a whole. `line` and `column` are 1-based and point at the offending
 * node so editors and CLIs can underline it.
 */
export interface RecipeProblem {
  readonly path: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/**
 * Outcome of {@link parseRecipe}. A result type rather than an exception because refusing
 * a recipe is an expected answer to user input, and callers need all the problems at once.
 */
export type ParseRecipeResult =
  | { readonly ok: true; readonly recipe: ParsedRecipe; readonly sha256: string }
  | { readonly ok: false; readonly problems: readonly RecipeProblem[] };
