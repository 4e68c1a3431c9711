import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { WorkItemSnapshotSchema } from "../gen/codex/agentmanager/v1/run_pb.js";
import { DEFAULT_TITLE_STEPS, parseTitleSteps, planSteps, titleVerb } from "./steps.js";

const opts = { titleSteps: DEFAULT_TITLE_STEPS, defaultTimeoutMs: 1_800_000 };

describe("planSteps", () => {
  it("runs a recipe's steps with tool env under step env, cwd and timeouts", () => {
    const item = create(WorkItemSnapshotSchema, {
      title: "build api",
      recipe: {
        tools: [{ name: "node", env: { A: "tool", B: "tool" } }],
        steps: [
          { run: "make", env: { B: "step" }, cwd: "api", timeout: durationFromMs(90_000) },
          { run: "make test" },
        ],
      },
    });
    expect(planSteps(item, opts)).toEqual({
      source: "recipe",
      steps: [
        { run: "make", env: { A: "tool", B: "step" }, cwd: "api", timeoutMs: 90_000 },
        { run: "make test", env: { A: "tool", B: "tool" }, cwd: "", timeoutMs: 1_800_000 },
      ],
    });
  });

  it("infers steps from the first known verb of the title when there is no recipe", () => {
    const plan = planSteps(create(WorkItemSnapshotSchema, { title: "Web: test then build" }), opts);
    expect(plan).toEqual({
      source: "title:test",
      steps: [{ run: "npm test", env: {}, cwd: "", timeoutMs: 1_800_000 }],
    });
    const custom = planSteps(create(WorkItemSnapshotSchema, { title: "deploy staging" }), {
      ...opts,
      titleSteps: { deploy: ["./deploy.sh", "./smoke.sh"] },
    });
    expect("steps" in custom && custom.steps.map((s) => s.run)).toEqual(["./deploy.sh", "./smoke.sh"]);
  });

  it("refuses clearly when neither a recipe nor a title verb says what to run", () => {
    const plan = planSteps(create(WorkItemSnapshotSchema, { title: "Refactor the parser" }), opts);
    expect(plan).toEqual({
      error:
        'work item "Refactor the parser" has no recipe and its title names no known step (build, test, deploy, plan, apply): ' +
        "attach a recipe (SetToolRecipe), put one of these words in the title, or map the word with --title-steps",
    });
  });
});

describe("titleVerb", () => {
  it("matches whole words only, case-insensitively", () => {
    expect(titleVerb("API BUILD", ["build"])).toBe("build");
    expect(titleVerb("rebuild cache", ["build"])).toBeUndefined();
    expect(titleVerb("deploy-prod", ["deploy"])).toBe("deploy");
  });
});

describe("parseTitleSteps", () => {
  it("accepts a command or a list per verb and refuses anything else with a reason", () => {
    expect(parseTitleSteps('{"Build": "make", "test": ["make test", "make lint"]}')).toEqual({
      build: ["make"],
      test: ["make test", "make lint"],
    });
    expect(() => parseTitleSteps("nope")).toThrow(/must be JSON/);
    expect(() => parseTitleSteps("[]")).toThrow(/JSON object/);
    expect(() => parseTitleSteps('{"build": []}')).toThrow(/"build" must be a command/);
  });
});
