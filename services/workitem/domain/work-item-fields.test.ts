import { describe, expect, it } from "vitest";
import { checkEnvironment, checkLabels, checkTitle, parseLabelSelector } from "./work-item-fields.js";

describe("work item fields", () => {
  it("checks titles by characters, not bytes", () => {
    expect(checkTitle("")).toHaveLength(1);
    expect(checkTitle("   ")).toHaveLength(1);
    expect(checkTitle("é".repeat(200))).toEqual([]);
    expect(checkTitle("x".repeat(201))).toHaveLength(1);
  });

  it("checks label keys and values and environments as the contract states", () => {
    expect(checkLabels({ "team/web": "a", "a.b-c_d": "" })).toEqual([]);
    expect(checkLabels({ "-bad": "x" })[0]?.field).toBe('work_item.labels["-bad"]');
    expect(checkLabels({ Upper: "x" })).toHaveLength(1);
    expect(checkLabels({ ok: "v".repeat(257) })).toHaveLength(1);
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"]));
    expect(checkLabels(many)[0]?.description).toMatch(/at most 64/);
    expect(checkEnvironment("")).toEqual([]);
    expect(checkEnvironment("prod-eu-1")).toEqual([]);
    expect(checkEnvironment("Prod")).toHaveLength(1);
  });

  it("parses label selectors: key=value, key present, and refuses the rest", () => {
    expect(parseLabelSelector(["tier=critical", "owner", "empty="])).toEqual({
      requirements: [
        ["tier", "critical"],
        ["owner", undefined],
        ["empty", ""],
      ],
      problems: [],
    });
    expect(parseLabelSelector(["=x", "Bad=1"]).problems.map((p) => p.field)).toEqual([
      "label_selector[0]",
      "label_selector[1]",
    ]);
    expect(
      parseLabelSelector(Array.from({ length: 17 }, (_, i) => `k${i}`)).problems[0]?.description,
    ).toMatch(/16/);
  });
});
