import { describe, expect, it } from "vitest";
import { parseRecipe } from "./parse-recipe.js";
import { billionLaughs, VALID_RECIPE } from "./test-fixtures.js";
import type { ParseRecipeResult } from "./types.js";

function messages(result: ParseRecipeResult): string[] {
  return result.ok ? [] : result.problems.map((p) => p.message);
}

describe("parseRecipe refuses hostile input cheaply", () => {
  it("refuses input over 256 KiB by byte length, before parsing", () => {
    // 100k two-byte characters: under the limit in characters, over it in bytes.
    const text = `steps: ["${"é".repeat(140_000)}"]`;
    expect(text.length).toBeLessThan(256 * 1024);
    expect(parseRecipe(text)).toEqual({
      ok: false,
      problems: [{ path: "", line: 1, column: 1, message: expect.stringMatching(/at most 262144 bytes/) }],
    });
  });

  it("refuses a billion-laughs document on its anchors and aliases, never expanding them", () => {
    const result = parseRecipe(billionLaughs());
    expect(result.ok).toBe(false);
    const all = messages(result);
    expect(all.some((m) => m.startsWith("aliases (*name) are not allowed"))).toBe(true);
    expect(all.some((m) => m.startsWith("anchors (&name) are not allowed"))).toBe(true);
    expect(all.length).toBeLessThanOrEqual(101);
  });

  it.each([
    ["flow sequences", "[".repeat(200_000)],
    ["flow maps", "{a: ".repeat(60_000)],
    ["compact block sequences", "- ".repeat(120_000)],
    ["explicit keys", "? ".repeat(120_000)],
  ])("refuses 100k-deep nesting of %s", (_kind, text) => {
    expect(messages(parseRecipe(text))).toEqual(["nesting is deeper than 32 levels"]);
  });

  it("refuses nesting just past the limit and accepts it at the limit", () => {
    const nested = (depth: number) =>
      `steps:\n  - run: x\n    env: ${"[".repeat(depth - 3)}${"]".repeat(depth - 3)}\n`;
    expect(messages(parseRecipe(nested(33)))).toEqual(["nesting is deeper than 32 levels"]);
    expect(messages(parseRecipe(nested(32)))).toEqual(["must be a map of names to strings, got a list"]);
  });

  it("refuses indentation-built nesting", () => {
    const lines = Array.from({ length: 40 }, (_, i) => `${" ".repeat(i * 2)}k${i}:`);
    expect(messages(parseRecipe(lines.join("\n")))).toEqual(["nesting is deeper than 32 levels"]);
  });

  it.each([
    ["flow list", `steps: [${"x,".repeat(120_000)}]`],
    ["block list", `steps:\n${"- x\n".repeat(60_000)}`],
    ["map of duplicate keys", `{${"a: 1,".repeat(50_000)}}`],
    ["list of aliases", `steps: [${"*a,".repeat(80_000)}]`],
  ])("refuses a huge %s while parsing", (_kind, text) => {
    expect(messages(parseRecipe(text))).toEqual(["a list or map has more than 512 entries"]);
  });

  it("keeps the answer small when tens of thousands of entries are wrong", () => {
    const duplicates = `steps: [${`{${"a: 1,".repeat(500)}},`.repeat(40)}]`;
    const result = parseRecipe(duplicates);
    expect(messages(result)).toHaveLength(101);
    expect(messages(result)[0]).toBe("duplicate key; each key may appear only once");
    const aliases = `steps: [${`[${"*a,".repeat(500)}],`.repeat(60)}]`;
    expect(messages(parseRecipe(aliases))).toHaveLength(101);
  });

  it("restores stack traces after composing", () => {
    const before = Error.stackTraceLimit;
    parseRecipe("steps: [{a: 1, a: 2}]");
    expect(Error.stackTraceLimit).toBe(before);
  });

  it("refuses tags, including custom and unresolvable ones", () => {
    for (const tag of [
      "!!js/function",
      "!custom",
      "!!str",
      "!<tag:example.com,2000:x>",
      "!!python/object:os.system",
    ]) {
      const result = parseRecipe(`steps:\n  - ${tag} "rm -rf /"\n`);
      expect(result.ok, tag).toBe(false);
      if (!result.ok) expect(result.problems[0]).toMatchObject({ path: "steps[0]", line: 2, column: 5 });
      expect(messages(result)[0]).toMatch(/^tags are not allowed/);
    }
  });

  it("refuses anchors even when never aliased, and document-level tags", () => {
    expect(messages(parseRecipe("steps: &s [x]\n"))).toEqual([expect.stringMatching(/^anchors/)]);
    expect(messages(parseRecipe("--- !!map\nsteps: [x]\n"))).toEqual([expect.stringMatching(/^tags/)]);
  });

  it("refuses multiple documents, directives and empty documents", () => {
    expect(messages(parseRecipe(`${VALID_RECIPE}---\nsteps: [y]\n`))).toEqual([
      'a recipe is a single YAML document; found 2 (remove the extra "---")',
    ]);
    expect(messages(parseRecipe("%YAML 1.1\n---\nsteps: [x]\n"))).toEqual([
      "YAML directives (%YAML, %TAG) are not allowed",
    ]);
    for (const empty of ["", "   \n", "# only a comment\n", "---\n", "~\n", "--- null\n..."]) {
      expect(messages(parseRecipe(empty)), JSON.stringify(empty)).toEqual([
        "recipe is empty; expected a map with tools and steps",
      ]);
    }
  });

  it("reports syntax errors with a position instead of throwing", () => {
    const result = parseRecipe('steps:\n  - run: "unterminated\n');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems[0]?.line).toBeGreaterThanOrEqual(2);
  });

  it("caps the number of problems it reports", () => {
    const text = `steps:\n${Array.from({ length: 250 }, () => "  - 1").join("\n")}\n`;
    const all = messages(parseRecipe(text));
    expect(all).toHaveLength(101);
    expect(all.at(-1)).toBe("too many problems; stopped after the first 100");
  });

  it("shortens quoted user text in messages", () => {
    const key = "k".repeat(10_000);
    const [message] = messages(parseRecipe(`steps: [x]\n${key}: 1\n`));
    expect(message?.length).toBeLessThan(200);
  });
});
