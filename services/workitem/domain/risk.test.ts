import { describe, expect, it } from "vitest";
import type { ParsedRecipe } from "./recipe/index.js";
import { assessRisk, DEFAULT_RISK_RULES, type RiskRules } from "./risk.js";

const CHECKSUM = `sha256:${"a".repeat(64)}`;
const recipe: ParsedRecipe = {
  tools: [
    { name: "terraform", version: "1.10.0", checksum: CHECKSUM, env: {}, network: true },
    { name: "jq", version: "1.7", checksum: CHECKSUM, env: {}, network: false },
  ],
  steps: [{ run: "terraform apply", env: {} }],
};

describe("assessRisk", () => {
  it("flags a production deploy with a readable reason", () => {
    expect(assessRisk({ kind: "DEPLOY", environment: "production", labels: {} }, DEFAULT_RISK_RULES)).toEqual(
      {
        risky: true,
        reasons: ["kind DEPLOY to environment production"],
      },
    );
  });

  it("needs both the kind and the environment to match", () => {
    expect(assessRisk({ kind: "DEPLOY", environment: "staging", labels: {} }, DEFAULT_RISK_RULES).risky).toBe(
      false,
    );
    expect(
      assessRisk({ kind: "BUILD", environment: "production", labels: {} }, DEFAULT_RISK_RULES).risky,
    ).toBe(false);
  });

  it("compares kinds and environments case-insensitively so spelling cannot bypass the gate", () => {
    const result = assessRisk({ kind: "apply", environment: " Prod ", labels: {} }, DEFAULT_RISK_RULES);
    expect(result).toEqual({ risky: true, reasons: ["kind apply to environment Prod"] });
  });

  it("flags each tool that requires network, only when the rule is on", () => {
    const subject = { kind: "BUILD", environment: "dev", labels: {}, recipe };
    expect(assessRisk(subject, DEFAULT_RISK_RULES)).toEqual({
      risky: true,
      reasons: ["tool terraform requires network"],
    });
    expect(assessRisk(subject, { ...DEFAULT_RISK_RULES, networkTools: false }).risky).toBe(false);
  });

  it("matches label selectors with matchLabels semantics", () => {
    const rules: RiskRules = {
      kinds: [],
      environments: [],
      networkTools: false,
      labelSelectors: [{ risk: "high" }, { team: "infra", tier: "core" }],
    };
    const assess = (labels: Record<string, string>) =>
      assessRisk({ kind: "X", environment: "y", labels }, rules);
    expect(assess({ risk: "high", other: "1" }).reasons).toEqual(["labels match selector risk=high"]);
    expect(assess({ team: "infra" }).risky).toBe(false);
    expect(assess({ tier: "core", team: "infra" }).reasons).toEqual([
      "labels match selector team=infra,tier=core",
    ]);
    expect(assess({ risk: "High" }).risky).toBe(false);
    expect(
      assessRisk({ kind: "X", environment: "y", labels: {} }, { ...rules, labelSelectors: [{}] }).risky,
    ).toBe(true);
  });

  it("does not mistake inherited object properties for labels", () => {
    const rules: RiskRules = {
      ...DEFAULT_RISK_RULES,
      labelSelectors: [{ constructor: "function Object() { [native code] }" }],
    };
    expect(assessRisk({ kind: "X", environment: "y", labels: {} }, rules).risky).toBe(false);
  });

  it("lists every reason when several rules fire", () => {
    const rules: RiskRules = { ...DEFAULT_RISK_RULES, labelSelectors: [{ risk: "high" }] };
    const result = assessRisk(
      { kind: "APPLY", environment: "prod", labels: { risk: "high" }, recipe },
      rules,
    );
    expect(result.reasons).toEqual([
      "kind APPLY to environment prod",
      "tool terraform requires network",
      "labels match selector risk=high",
    ]);
  });

  it("ships frozen defaults", () => {
    expect(Object.isFrozen(DEFAULT_RISK_RULES)).toBe(true);
    expect(Object.isFrozen(DEFAULT_RISK_RULES.kinds)).toBe(true);
  });
});
