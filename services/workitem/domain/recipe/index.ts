/**
 * Tool recipes: the YAML a work item carries to say which pinned tools an agent needs and
 * which commands it runs. This module is the only place recipe text is interpreted.
 */
export { canonicalRecipeJson, recipeSha256 } from "./canonical.js";
export { formatDuration, parseTimeout } from "./duration.js";
export { DEFAULT_RECIPE_LIMITS, type RecipeLimits, resolveLimits } from "./limits.js";
export { canonicalSha256, parseRecipe, RecipeInvalidError } from "./parse-recipe.js";
export { normaliseCwd } from "./step.js";
export { TOOL_CHECKSUM, TOOL_NAME } from "./tool.js";
export type { ParsedRecipe, ParseRecipeResult, RecipeProblem, Step, Tool } from "./types.js";
