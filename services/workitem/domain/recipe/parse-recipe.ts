import { recipeSha256 } from "./canonical.js";
import type { ReadContext } from "./fields.js";
import { type RecipeLimits, resolveLimits } from "./limits.js";
import { loadRecipeYaml } from "./load-yaml.js";
import { ProblemCollector } from "./problems.js";
import { readRecipe } from "./read-recipe.js";
import type { ParseRecipeResult, RecipeProblem } from "./types.js";

/**
 * Validates an uploaded tool recipe (untrusted YAML) and returns either the typed recipe
 * with its canonical SHA-256, or every problem found, each with path, line and column.
 *
 * Never throws and stays cheap on hostile input: size is checked before parsing, nesting
 * is cut off while parsing, aliases/anchors/tags/directives and extra documents are refused,
 * list and string sizes are bounded, and so is the number of problems reported. An
 * unexpected internal failure is itself reported as a problem rather than thrown, because a
 * validator that can crash on input is a denial-of-service lever.
 */
export function parseRecipe(text: string, limits?: Partial<RecipeLimits>): ParseRecipeResult {
  const resolved = resolveLimits(limits);
  const problems = new ProblemCollector(resolved.maxProblems);
  try {
    if (typeof text !== "string") {
      problems.add("", 0, "recipe must be text");
      return { ok: false, problems: problems.list() };
    }
    const bytes = Buffer.byteLength(text, "utf8");
    if (bytes > resolved.maxBytes) {
      problems.add("", 0, `recipe is ${bytes} bytes; at most ${resolved.maxBytes} bytes are accepted`);
      return { ok: false, problems: problems.list() };
    }
    const root = loadRecipeYaml(text, resolved, problems);
    const ctx: ReadContext = { problems, limits: resolved };
    const recipe = root === undefined ? undefined : readRecipe(ctx, root);
    if (recipe && problems.count === 0) return { ok: true, recipe, sha256: recipeSha256(recipe) };
    if (problems.count === 0) problems.add("", 0, "recipe is invalid");
    return { ok: false, problems: problems.list() };
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    problems.add("", 0, `recipe could not be validated: ${detail.slice(0, 200)}`);
    return { ok: false, problems: problems.list() };
  }
}

/** Thrown by {@link canonicalSha256} for text that is not a valid recipe. */
export class RecipeInvalidError extends Error {
  readonly code = "RECIPE_INVALID";
  readonly problems: readonly RecipeProblem[];

  constructor(problems: readonly RecipeProblem[]) {
    const first = problems[0];
    super(
      first
        ? `invalid recipe: ${first.path || "recipe"} (line ${first.line}, column ${first.column}): ${first.message}`
        : "invalid recipe",
    );
    this.name = "RecipeInvalidError";
    this.problems = problems;
  }
}

/**
 * Canonical hash of recipe text, for callers that hold text already known to be valid
 * (stored versions, tests): two texts hash alike exactly when they parse to the same recipe.
 * Throws {@link RecipeInvalidError} otherwise; use {@link parseRecipe} to validate uploads.
 */
export function canonicalSha256(text: string, limits?: Partial<RecipeLimits>): string {
  const result = parseRecipe(text, limits);
  if (!result.ok) throw new RecipeInvalidError(result.problems);
  return result.sha256;
}
