import { describe, expect, it } from "vitest";
import { canonicalRecipeJson } from "./canonical.js";
import { canonicalSha256, parseRecipe, RecipeInvalidError } from "./parse-recipe.js";
import { SHA_A, VALID_RECIPE } from "./test-fixtures.js";

describe("canonical recipe hashing", () => {
  it("ignores comments, quoting, key order, style and equivalent spellings", () => {
    const block = `# build
tools:
  - name: jq
    version: "1.7"
    checksum: ${SHA_A}
steps:
  - make
  - run: make test
    timeout: 1m
    cwd: ./src/
`;
    const flow = `steps: ["make", {cwd: "src", timeout: 60, run: 'make test', env: {}}]
tools: [{checksum: "${SHA_A}", network: false, version: '1.7', name: jq, env: {}}]`;
    expect(canonicalSha256(flow)).toBe(canonicalSha256(block));
  });

  it("changes when anything an agent would execute changes", () => {
    const base = canonicalSha256(VALID_RECIPE);
    for (const [from, to] of [
      ["terraform init", "terraform init -upgrade"],
      ['version: "1.7"', 'version: "1.7.1"'],
      ["network: true", "network: false"],
      ["timeout: 600", "timeout: 601"],
      ["TF_LOG: info", "TF_LOG: debug"],
    ] as const) {
      expect(canonicalSha256(VALID_RECIPE.replace(from, to)), to).not.toBe(base);
    }
  });

  it("matches the sha256 returned by parseRecipe", () => {
    const result = parseRecipe(VALID_RECIPE);
    expect(result.ok && result.sha256).toBe(canonicalSha256(VALID_RECIPE));
  });

  it("serialises with sorted keys and explicit defaults", () => {
    const result = parseRecipe('steps: [{run: x, env: {B: "2", A: "1"}}]');
    expect(result.ok && canonicalRecipeJson(result.recipe)).toBe(
      '{"steps":[{"env":{"A":"1","B":"2"},"run":"x"}],"tools":[]}',
    );
  });

  it("throws a typed error carrying the problems for invalid text", () => {
    expect(() => canonicalSha256("steps: []")).toThrow(RecipeInvalidError);
    try {
      canonicalSha256("steps: []");
    } catch (error) {
      expect(error).toBeInstanceOf(RecipeInvalidError);
      expect((error as RecipeInvalidError).problems[0]?.path).toBe("steps");
      expect((error as RecipeInvalidError).message).toContain("line 1, column 8");
    }
  });
});
