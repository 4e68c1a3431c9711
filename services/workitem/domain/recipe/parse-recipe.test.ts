import { describe, expect, it } from "vitest";
import { parseRecipe } from "./parse-recipe.js";
import { SHA_A, VALID_RECIPE, withLine } from "./test-fixtures.js";
import type { ParseRecipeResult, RecipeProblem } from "./types.js";

function problemsOf(result: ParseRecipeResult): readonly RecipeProblem[] {
  if (result.ok) throw new Error("expected the recipe to be refused");
  return result.problems;
}

function brief(result: ParseRecipeResult): string[] {
  return problemsOf(result).map((p) => `${p.line}:${p.column} ${p.path}`);
}

describe("parseRecipe accepts valid recipes", () => {
  it("returns typed tools and steps with defaults applied and cwd normalised", () => {
    const result = parseRecipe(VALID_RECIPE);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.recipe).toEqual({
      tools: [
        {
          name: "terraform",
          version: "1.10.0",
          checksum: SHA_A,
          env: { TF_IN_AUTOMATION: "1" },
          network: true,
        },
        { name: "jq", version: "1.7", checksum: `sha256:${"b".repeat(64)}`, env: {}, network: false },
      ],
      steps: [
        { run: "terraform init", env: {} },
        {
          run: "terraform plan -out plan.bin",
          env: { TF_LOG: "info" },
          timeoutMs: 5_400_000,
          cwd: "infra/prod",
        },
        { run: "terraform apply plan.bin", env: {}, timeoutMs: 600_000 },
      ],
    });
    expect(result.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("allows recipes without tools, and flow style", () => {
    const result = parseRecipe('{steps: ["make test", {run: make, cwd: "."}]}');
    expect(result).toMatchObject({
      ok: true,
      recipe: { tools: [], steps: [{ run: "make test" }, { cwd: "." }] },
    });
  });

  it("keeps an environment variable named __proto__ as an ordinary entry", () => {
    const result = parseRecipe('steps:\n  - run: x\n    env: { __proto__: "v" }\n');
    expect(result.ok && Object.entries(result.recipe.steps[0]?.env ?? {})).toEqual([["__proto__", "v"]]);
  });
});

describe("parseRecipe reports every problem with path, line and column", () => {
  it("collects problems across tools and steps in one pass", () => {
    const text = `tools:
  - name: "bad name!"
    version: 1.10
    checksum: sha256:ABC
    network: yes
    colour: red
  - version: "1"
    checksum: sha256:${"A".repeat(64)}
steps:
  - 42
  - run: ""
    timeout: 25h
    cwd: ../x
  - run: y
    timout: 3
`;
    expect(problemsOf(parseRecipe(text))).toEqual([
      expect.objectContaining({
        path: "tools[0].name",
        line: 2,
        column: 11,
        message: expect.stringContaining("tool name"),
      }),
      expect.objectContaining({
        path: "tools[0].version",
        line: 3,
        column: 14,
        message: expect.stringContaining("1.1"),
      }),
      expect.objectContaining({ path: "tools[0].checksum", line: 4, column: 15 }),
      expect.objectContaining({
        path: "tools[0].network",
        line: 5,
        column: 14,
        message: expect.stringContaining("true or false"),
      }),
      expect.objectContaining({
        path: "tools[0].colour",
        line: 6,
        column: 5,
        message: expect.stringContaining("unknown key"),
      }),
      expect.objectContaining({ path: "tools[1].name", line: 7, column: 5, message: "is required" }),
      expect.objectContaining({
        path: "tools[1].checksum",
        line: 8,
        column: 15,
        message: "hex digits must be lowercase",
      }),
      expect.objectContaining({ path: "steps[0]", line: 10, column: 5 }),
      expect.objectContaining({ path: "steps[1].run", line: 11, column: 10, message: "must not be empty" }),
      expect.objectContaining({
        path: "steps[1].timeout",
        line: 12,
        column: 14,
        message: "must be at most 24h",
      }),
      expect.objectContaining({
        path: "steps[1].cwd",
        line: 13,
        column: 10,
        message: expect.stringContaining(".."),
      }),
      expect.objectContaining({ path: "steps[2].timout", line: 15, column: 5 }),
    ]);
  });

  it("refuses non-string env values and asks for quotes", () => {
    const text = withLine(
      VALID_RECIPE,
      7,
      "      TF_IN_AUTOMATION: 1\n      DEBUG: true\n      EMPTY:\n      OK: '1'",
    );
    const problems = problemsOf(parseRecipe(text));
    expect(problems.map((p) => p.path)).toEqual([
      "tools[0].env.TF_IN_AUTOMATION",
      "tools[0].env.DEBUG",
      "tools[0].env.EMPTY",
    ]);
    for (const p of problems) expect(p.message).toMatch(/^env values must be strings; quote them/);
  });

  it("refuses badly named env variables and non-map env", () => {
    const text = 'steps:\n  - run: a\n    env: { 1X: "a", "A-B": "b" }\n  - run: b\n    env: [A]\n';
    const problems = problemsOf(parseRecipe(text));
    expect(brief(parseRecipe(text))).toEqual(["3:12 steps[0].env", "3:21 steps[0].env", "5:10 steps[1].env"]);
    expect(problems[0]?.message).toContain('"1X"');
  });

  it("counts lines and columns correctly with a byte-order mark and CRLF line ends", () => {
    const text = "\uFEFFsteps:\r\n  - make\r\n  - run: x\r\n    timeout: 0\r\n";
    expect(problemsOf(parseRecipe(text))).toEqual([
      { path: "steps[1].timeout", line: 4, column: 14, message: "must be longer than zero" },
    ]);
  });

  it("refuses unknown keys at the top level too", () => {
    expect(problemsOf(parseRecipe("steps: [x]\nstep: [y]\n"))).toEqual([
      { path: "step", line: 2, column: 1, message: 'unknown key "step"; expected one of: tools, steps' },
    ]);
  });

  it("requires steps, non-empty", () => {
    expect(brief(parseRecipe("tools: []\n"))).toEqual(["1:1 steps"]);
    expect(problemsOf(parseRecipe("steps: []\n"))[0]?.message).toBe("must contain at least one step");
  });

  it("refuses duplicate keys and duplicate tools", () => {
    expect(problemsOf(parseRecipe("steps: [a]\nsteps: [b]\n"))[0]).toMatchObject({
      line: 2,
      column: 1,
      path: "steps",
    });
    const twice = `tools:\n  - {name: jq, version: "1", checksum: ${SHA_A}}\n  - {name: JQ, version: "2", checksum: ${SHA_A}}\nsteps: [x]\n`;
    expect(problemsOf(parseRecipe(twice))).toEqual([
      expect.objectContaining({
        path: "tools[1].name",
        line: 3,
        message: 'tool "JQ" is already declared at tools[0]',
      }),
    ]);
  });

  it("validates timeouts", () => {
    const timeout = (t: string) => parseRecipe(`steps:\n  - run: x\n    timeout: ${t}\n`);
    expect(timeout('"30s"')).toMatchObject({ ok: true, recipe: { steps: [{ timeoutMs: 30_000 }] } });
    expect(timeout("5m")).toMatchObject({ ok: true, recipe: { steps: [{ timeoutMs: 300_000 }] } });
    expect(timeout("24h")).toMatchObject({ ok: true, recipe: { steps: [{ timeoutMs: 86_400_000 }] } });
    expect(timeout("30")).toMatchObject({ ok: true, recipe: { steps: [{ timeoutMs: 30_000 }] } });
    for (const bad of ["0", "0s", "86401", "1.5h", '"30"', "ten", "-5", "1d", "[1]", "true", "~"]) {
      expect(problemsOf(timeout(bad))[0]?.path, bad).toBe("steps[0].timeout");
    }
  });

  it("keeps cwd inside the workspace", () => {
    for (const bad of ["/etc", "a/../../b", "..", "C:/x", "a\\b", "~/x", ""]) {
      expect(problemsOf(parseRecipe(`steps: [{run: x, cwd: ${JSON.stringify(bad)}}]`))[0]?.path, bad).toBe(
        "steps[0].cwd",
      );
    }
  });

  it("refuses too many tools or steps without reading each one", () => {
    const steps = `steps: [${Array(257).fill("x").join(",")}]`;
    expect(problemsOf(parseRecipe(steps))).toEqual([
      expect.objectContaining({ path: "steps", message: "has 257 entries; at most 256 are allowed" }),
    ]);
    const tools = `tools: [${Array(65).fill("{}").join(",")}]\nsteps: [x]`;
    expect(problemsOf(parseRecipe(tools))).toHaveLength(1);
  });

  it("refuses strings over 16 KiB, counted in bytes", () => {
    const long = "é".repeat(8 * 1024 + 1);
    expect(problemsOf(parseRecipe(`steps: ["${long}"]`))[0]).toMatchObject({
      path: "steps[0]",
      message: "is longer than 16384 bytes",
    });
    expect(parseRecipe(`steps: ["${"é".repeat(8 * 1024)}"]`).ok).toBe(true);
  });

  it("honours overridden limits", () => {
    expect(parseRecipe("steps: [a, b]", { maxSteps: 1 }).ok).toBe(false);
  });
});
