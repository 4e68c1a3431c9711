import { createHash } from "node:crypto";
import type { ParsedRecipe } from "./types.js";

type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json | undefined };

/**
 * Serialises a JSON value with object keys sorted at every level and `undefined` members
 * dropped, so equal values always produce identical bytes.
 */
function stableStringify(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const obj = value as { readonly [key: string]: Json | undefined };
    const members = Object.keys(obj)
      .sort()
      .flatMap((key) => {
        const member = obj[key];
        return member === undefined ? [] : [`${JSON.stringify(key)}:${stableStringify(member)}`];
      });
    return `{${members.join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The canonical form of a recipe: sorted-key JSON of the parsed recipe with defaults made
 * explicit (`network: false`, `env: {}`), timeouts in milliseconds and `cwd` normalised.
 * Comments, quoting, key order, block vs flow style and `"60s"` vs `1m` vs `60` do not
 * change it; anything an agent would execute differently does.
 */
export function canonicalRecipeJson(recipe: ParsedRecipe): string {
  return stableStringify({
    tools: recipe.tools.map((t) => ({ ...t, env: { ...t.env } })),
    steps: recipe.steps.map((s) => ({ ...s, env: { ...s.env } })),
  });
}

/** Lowercase hex SHA-256 of {@link canonicalRecipeJson}: the identity used to version recipes. */
export function recipeSha256(recipe: ParsedRecipe): string {
  return createHash("sha256").update(canonicalRecipeJson(recipe), "utf8").digest("hex");
}
