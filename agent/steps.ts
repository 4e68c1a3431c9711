/**
 * What a run executes. With a recipe: its steps, each with the tools' env under its own, its
 * cwd and its timeout (30 minutes when the recipe sets none). Without one: steps inferred from
 * the work item's title — the first word of the title that names a known verb (build, test,
 * deploy, plan, apply, or any key of a configured map) picks the commands — or a clear refusal.
 * Pure, so the rules are tested on their own.
 */
import type { WorkItemSnapshot } from "../gen/codex/agentmanager/v1/run_pb.js";
import type { StepSpec } from "./step-runner.js";

/** Commands per title verb when a work item has no recipe (override with --title-steps). */
export const DEFAULT_TITLE_STEPS: Readonly<Record<string, readonly string[]>> = {
  build: ["npm run build"],
  test: ["npm test"],
  deploy: ["npm run deploy"],
  plan: ["terraform init -input=false", "terraform plan -input=false -out=plan.tfplan"],
  apply: ["terraform init -input=false", "terraform apply -input=false -auto-approve"],
};

export interface StepPlanOptions {
  titleSteps: Readonly<Record<string, readonly string[]>>;
  defaultTimeoutMs: number;
}

export type StepPlan = { steps: StepSpec[]; source: "recipe" | `title:${string}` } | { error: string };

export function planSteps(item: WorkItemSnapshot, o: StepPlanOptions): StepPlan {
  const recipe = item.recipe;
  if (recipe && recipe.steps.length > 0) {
    const toolEnv = Object.assign({}, ...recipe.tools.map((t) => t.env)) as Record<string, string>;
    return {
      source: "recipe",
      steps: recipe.steps.map((s) => ({
        run: s.run,
        env: { ...toolEnv, ...s.env },
        cwd: s.cwd,
        timeoutMs: s.timeout
          ? Number(s.timeout.seconds) * 1000 + Math.round(s.timeout.nanos / 1e6)
          : o.defaultTimeoutMs,
      })),
    };
  }
  const verb = titleVerb(item.title, Object.keys(o.titleSteps));
  if (verb === undefined) {
    const verbs = Object.keys(o.titleSteps).join(", ");
    return {
      error:
        `work item "${item.title}" has no recipe and its title names no known step (${verbs}): ` +
        "attach a recipe (SetToolRecipe), put one of these words in the title, or map the word with --title-steps",
    };
  }
  return {
    source: `title:${verb}`,
    steps: (o.titleSteps[verb] ?? []).map((run) => ({
      run,
      env: {},
      cwd: "",
      timeoutMs: o.defaultTimeoutMs,
    })),
  };
}

/** The first word of `title` (case-insensitive, split on non-letters) that is one of `verbs`. */
export function titleVerb(title: string, verbs: readonly string[]): string | undefined {
  const known = new Map(verbs.map((v) => [v.toLowerCase(), v]));
  for (const word of title.toLowerCase().split(/[^a-z0-9]+/)) {
    const verb = known.get(word);
    if (verb !== undefined) return verb;
  }
  return undefined;
}

/** Parses a --title-steps value: JSON `{"verb": "cmd" | ["cmd", ...]}`. Throws with a clear message. */
export function parseTitleSteps(json: string): Record<string, string[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new Error(`title steps must be JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error('title steps must be a JSON object like {"build": ["make"]}');
  }
  const out: Record<string, string[]> = {};
  for (const [verb, cmds] of Object.entries(raw)) {
    const list = typeof cmds === "string" ? [cmds] : cmds;
    if (
      !Array.isArray(list) ||
      list.length === 0 ||
      !list.every((c) => typeof c === "string" && c.trim() !== "")
    ) {
      throw new Error(`title steps: "${verb}" must be a command or a non-empty list of commands`);
    }
    out[verb.toLowerCase()] = list as string[];
  }
  return out;
}
