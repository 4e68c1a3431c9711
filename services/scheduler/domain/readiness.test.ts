import { describe, expect, it } from "vitest";
import { type TaskFacts, waitReasons, wakeTime } from "./readiness.js";

const now = new Date("2026-01-01T00:00:00Z");
const later = new Date("2026-01-01T00:01:00Z");
const base: TaskFacts = {
  dependencies: [],
  approvalPending: false,
  notBefore: null,
  backoffUntil: null,
  quotaUntil: null,
  quotaDetail: "",
  nextRetry: 1,
  maxRetries: 3,
};

describe("waitReasons", () => {
  it("is empty for a task with nothing to wait for", () => {
    expect(waitReasons(base, now)).toEqual([]);
    expect(waitReasons({ ...base, notBefore: now }, now)).toEqual([]);
  });

  it("lists pending dependencies and which of them failed", () => {
    const r = waitReasons(
      {
        ...base,
        dependencies: [
          { workItemId: "a", outcome: "DONE" },
          { workItemId: "b", outcome: "" },
          { workItemId: "c", outcome: "FAILED" },
        ],
      },
      now,
    );
    expect(r).toHaveLength(1);
    expect(r[0]?.kind).toBe("DEPENDENCIES");
    expect(r[0]?.workItemIds).toEqual(["b", "c"]);
    expect(r[0]?.detail).toContain("c FAILED");
  });

  it("orders every kind and ends time waits at their latest until", () => {
    const r = waitReasons(
      { ...base, approvalPending: true, quotaUntil: later, notBefore: later, backoffUntil: later },
      now,
    );
    expect(r.map((x) => x.kind)).toEqual(["APPROVAL", "QUOTA", "DELAY", "BACKOFF"]);
    expect(wakeTime(r)).toBeUndefined();
    expect(wakeTime(r.slice(1))).toEqual(later);
  });
});
