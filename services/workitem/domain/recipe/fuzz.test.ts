import { describe, expect, it } from "vitest";
import { DEFAULT_RECIPE_LIMITS } from "./limits.js";
import { parseRecipe } from "./parse-recipe.js";
import { billionLaughs, VALID_RECIPE } from "./test-fixtures.js";

/** Small deterministic PRNG (mulberry32) so a failure reproduces from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SIGNIFICANT = [
  ..."[]{}:-?,&*!|>'\"#%@`~\n\t \\",
  "---",
  "...",
  "\r\n",
  "\u0000",
  "\uFEFF",
  "é",
  "😀",
  "!!",
  "<<",
];
const SEEDS = [
  VALID_RECIPE,
  billionLaughs(),
  'steps: [a, {run: b, env: {X: "1"}}]\n',
  "tools: []\nsteps:\n  - x\n",
];

function mutate(text: string, random: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const at = Math.floor(random() * (text.length + 1));
  switch (Math.floor(random() * 6)) {
    case 0:
      return text.slice(0, at) + pick(SIGNIFICANT) + text.slice(at);
    case 1:
      return text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 8));
    case 2: {
      const len = Math.floor(random() * 40);
      return (
        text.slice(0, at) + text.slice(at, at + len).repeat(1 + Math.floor(random() * 4)) + text.slice(at)
      );
    }
    case 3: {
      const lines = text.split("\n");
      const i = Math.floor(random() * lines.length);
      const j = Math.floor(random() * lines.length);
      [lines[i], lines[j]] = [lines[j] ?? "", lines[i] ?? ""];
      return lines.join("\n");
    }
    case 4:
      return text.slice(0, at) + String.fromCharCode(Math.floor(random() * 0x3000)) + text.slice(at);
    default:
      return text.replace(/ {2}/, pick(["", " ", "\t", "    "]));
  }
}

describe("parseRecipe on randomly mutated input", () => {
  it("never throws, never fails internally, and always answers in the documented shape", () => {
    const random = prng(20261127);
    let refused = 0;
    const violations: string[] = [];
    for (let i = 0; i < 2000; i++) {
      let text = SEEDS[i % SEEDS.length] ?? "";
      const rounds = 1 + Math.floor(random() * 6);
      for (let r = 0; r < rounds; r++) text = mutate(text, random);

      const result = parseRecipe(text);
      if (result.ok) {
        if (!/^[0-9a-f]{64}$/.test(result.sha256) || result.recipe.steps.length === 0) violations.push(text);
        continue;
      }
      refused++;
      const lineCount = text.split("\n").length;
      const wellFormed =
        result.problems.length > 0 &&
        result.problems.length <= DEFAULT_RECIPE_LIMITS.maxProblems + 1 &&
        result.problems.every(
          (p) =>
            p.line >= 1 &&
            p.line <= lineCount &&
            p.column >= 1 &&
            typeof p.path === "string" &&
            !p.message.startsWith("recipe could not be validated"),
        );
      if (!wellFormed) violations.push(text);
    }
    expect(violations).toEqual([]);
    // The mutations must actually exercise the refusal paths, or this test proves little.
    expect(refused).toBeGreaterThan(1000);
  });
});
