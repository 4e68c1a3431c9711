import type { ParsedRecipe } from "./recipe/index.js";

/**
 * Which work needs an approval before the scheduler may start it. Explicit data rather than
 * code so operators can read and change the policy, and so every decision can say which
 * rule fired.
 */
export interface RiskRules {
  /** Work item kinds that are risky when aimed at one of `environments` (e.g. DEPLOY, APPLY). */
  readonly kinds: readonly string[];
  /** Environments in which those kinds are risky (e.g. production, prod). */
  readonly environments: readonly string[];
  /** Whether a recipe tool declaring `network: true` makes the work risky on its own. */
  readonly networkTools: boolean;
  /**
   * Label selectors with Kubernetes `matchLabels` semantics: a selector matches when every
   * one of its key/value pairs is among the work item's labels. Any matching selector makes
   * the work risky; an empty selector therefore matches everything.
   */
  readonly labelSelectors: readonly Readonly<Record<string, string>>[];
}

/**
 * Conservative defaults: production deploys and infrastructure applies need approval, and so
 * does any tool that wants network access while running (it could exfiltrate the secrets an
 * agent holds). Loosen per installation, not here.
 */
export const DEFAULT_RISK_RULES: RiskRules = Object.freeze({
  kinds: Object.freeze(["DEPLOY", "APPLY"]),
  environments: Object.freeze(["production", "prod"]),
  networkTools: true,
  labelSelectors: Object.freeze([]),
});

/** The facts about a work item that risk depends on. */
export interface RiskSubject {
  readonly kind: string;
  readonly environment: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly recipe?: ParsedRecipe;
}

export interface RiskAssessment {
  readonly risky: boolean;
  /** Human-readable, one per rule that fired, e.g. "kind DEPLOY to environment production". */
  readonly reasons: readonly string[];
}

/**
 * Kinds and environments are compared case-insensitively and trimmed: `Production` must
 * not slip past a gate written as `production`. Labels compare exactly, as in Kubernetes.
 */
function normalise(value: string): string {
  return value.trim().toLowerCase();
}

function selectorMatches(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(selector).every(
    ([key, value]) => Object.hasOwn(labels, key) && labels[key] === value,
  );
}

function formatSelector(selector: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(selector)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`);
  return pairs.length === 0 ? "{} (matches every work item)" : pairs.join(",");
}

/**
 * Decides whether a work item needs an approval, listing every reason rather than the
 * first, so the approver sees the whole picture.
 */
export function assessRisk(subject: RiskSubject, rules: RiskRules): RiskAssessment {
  const reasons: string[] = [];

  const kinds = new Set(rules.kinds.map(normalise));
  const environments = new Set(rules.environments.map(normalise));
  if (kinds.has(normalise(subject.kind)) && environments.has(normalise(subject.environment))) {
    reasons.push(`kind ${subject.kind.trim()} to environment ${subject.environment.trim()}`);
  }

  if (rules.networkTools) {
    for (const tool of subject.recipe?.tools ?? []) {
      if (tool.network) reasons.push(`tool ${tool.name} requires network`);
    }
  }

  for (const selector of rules.labelSelectors) {
    if (selectorMatches(selector, subject.labels))
      reasons.push(`labels match selector ${formatSelector(selector)}`);
  }

  return { risky: reasons.length > 0, reasons };
}
