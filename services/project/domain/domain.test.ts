import { describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../../gen/google/rpc/error_details_pb.js";
import type { ServiceError } from "../../../mesh/errors.js";
import { pageTokens } from "../../../mesh/pagination/page-token.js";
import { etagMatches, etagOf } from "./etag.js";
import { applyProjectMask, checkUpdateMask } from "./field-mask.js";
import { dailyUtcWindow, exceededLimit, msUntilReset, runsRemaining } from "./quota-window.js";
import { checkLabels, checkProjectName, Violations } from "./validation.js";

function fieldsOf(fn: () => void): string[] {
  try {
    fn();
  } catch (err) {
    return (err as ServiceError).findDetail(BadRequestSchema)?.fieldViolations.map((f) => f.field) ?? [];
  }
  return [];
}

describe("validation", () => {
  it("checks project names against the contract's slug rule", () => {
    const bad = ["", "ab", "1abc", "Abc", "abc-", "a_bc", "a".repeat(64)];
    for (const name of bad) {
      const v = new Violations();
      checkProjectName(v, "project.name", name);
      expect(v.any, name).toBe(true);
    }
    for (const name of ["abc", "my-project-1", "a".repeat(63)]) {
      const v = new Violations();
      checkProjectName(v, "project.name", name);
      expect(v.any, name).toBe(false);
    }
  });

  it("names every bad label in its path", () => {
    const v = new Violations();
    checkLabels(v, "labels", { ok: "v", Bad: "x", good: "UPPER" });
    expect(v.items.map((i) => i.field)).toEqual(['labels["Bad"]', 'labels["good"]']);
  });

  it("throws one INVALID_ARGUMENT listing every field", () => {
    const fields = fieldsOf(() =>
      new Violations().uuid("project_id", "nope").length("content", "", 1, 10).throwIfAny(),
    );
    expect(fields).toEqual(["project_id", "content"]);
  });

  it("counts characters as code points", () => {
    const v = new Violations().length("x", "😀😀", 1, 2);
    expect(v.any).toBe(false);
  });
});

describe("field masks", () => {
  it("refuses an empty mask and unknown or immutable paths", () => {
    const v = new Violations();
    expect(checkUpdateMask(v, [])).toEqual([]);
    expect(v.items[0]?.field).toBe("update_mask");
    const w = new Violations();
    expect(checkUpdateMask(w, ["description", "name", "description"])).toEqual(["description"]);
    expect(w.items.map((i) => i.field)).toEqual(["update_mask.paths[1]"]);
  });

  it("applies only masked paths and reports what changed", () => {
    const current = { displayName: "A", description: "d", labels: { a: "1" } };
    const patch = { displayName: "B", description: "ignored", labels: { a: "1" } };
    const { next, changed } = applyProjectMask(current, patch, ["display_name", "labels"]);
    expect(next).toEqual({ displayName: "B", description: "d", labels: { a: "1" } });
    expect(changed).toEqual(["display_name"]);
  });
});

describe("etags", () => {
  it("changes with the version and differs across resources", () => {
    expect(etagOf("project", "p1", 1n)).not.toBe(etagOf("project", "p1", 2n));
    expect(etagOf("project", "p1", 1n)).not.toBe(etagOf("quota", "p1", 1n));
    expect(etagMatches("", "project", "p1", 5n)).toBe(true);
    expect(etagMatches(etagOf("project", "p1", 4n), "project", "p1", 5n)).toBe(false);
  });
});

describe("page tokens", () => {
  it("report garbage, forged shapes and tokens from other filters as page_token violations", () => {
    const pages = pageTokens({ s: 1, l: { b: "2", a: "1" } });
    const ok = new Violations();
    expect(pageTokens({ l: { a: "1", b: "2" }, s: 1 }).cursorOf(pages.encode(["abc", 3]), ok)).toEqual([
      "abc",
      3,
    ]);
    expect(ok.any).toBe(false);
    for (const [token, filters, valid] of [
      ["%%%", { s: 1, l: { b: "2", a: "1" } }, () => true],
      [pages.encode(["x"]), { s: 2 }, () => true],
      [pages.encode(["x"]), { s: 1, l: { b: "2", a: "1" } }, () => false],
    ] as const) {
      const v = new Violations();
      expect(pageTokens(filters).cursorOf(token, v, { valid })).toBeUndefined();
      expect(v.items[0]?.field).toBe("page_token");
    }
  });
});

describe("quota windows", () => {
  it("uses the UTC calendar day", () => {
    const now = new Date("2026-11-27T23:59:00.000Z");
    const w = dailyUtcWindow(now);
    expect(w.start.toISOString()).toBe("2026-11-27T00:00:00.000Z");
    expect(w.reset.toISOString()).toBe("2026-11-28T00:00:00.000Z");
    expect(msUntilReset(now, w)).toBe(60_000);
  });

  it("reports runs_per_day before concurrency, and 0 as unlimited", () => {
    expect(exceededLimit({ runsPerDay: 2, maxConcurrentRuns: 1 }, { runsUsed: 2, concurrentInUse: 1 })).toBe(
      "runs_per_day",
    );
    expect(exceededLimit({ runsPerDay: 3, maxConcurrentRuns: 1 }, { runsUsed: 2, concurrentInUse: 1 })).toBe(
      "max_concurrent_runs",
    );
    expect(exceededLimit({ runsPerDay: 0, maxConcurrentRuns: 0 }, { runsUsed: 9, concurrentInUse: 9 })).toBe(
      undefined,
    );
    expect(runsRemaining({ runsPerDay: 0, maxConcurrentRuns: 0 }, { runsUsed: 9, concurrentInUse: 0 })).toBe(
      -1,
    );
    expect(runsRemaining({ runsPerDay: 5, maxConcurrentRuns: 0 }, { runsUsed: 9, concurrentInUse: 0 })).toBe(
      0,
    );
  });
});
