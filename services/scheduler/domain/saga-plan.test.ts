import { describe, expect, it } from "vitest";
import { nextMove } from "./saga-plan.js";

describe("nextMove", () => {
  it("runs steps in order and resumes an interrupted one", () => {
    expect(nextMove("RUNNING", ["PENDING", "PENDING", "PENDING"])).toEqual({ kind: "run", idx: 0 });
    expect(nextMove("RUNNING", ["SUCCEEDED", "SKIPPED", "RUNNING", "PENDING"])).toEqual({
      kind: "run",
      idx: 2,
    });
    expect(nextMove("RUNNING", ["SUCCEEDED", "SKIPPED", "SUCCEEDED"])).toEqual({
      kind: "finish",
      state: "COMPLETED",
    });
  });

  it("compensates succeeded steps in reverse, skipping the failed and skipped ones", () => {
    const steps = ["SUCCEEDED", "SKIPPED", "SUCCEEDED", "FAILED", "PENDING"] as const;
    expect(nextMove("COMPENSATING", steps)).toEqual({ kind: "compensate", idx: 2 });
    expect(nextMove("COMPENSATING", ["SUCCEEDED", "SKIPPED", "COMPENSATED", "FAILED", "PENDING"])).toEqual({
      kind: "compensate",
      idx: 0,
    });
    expect(nextMove("COMPENSATING", ["COMPENSATING", "COMPENSATED", "FAILED"])).toEqual({
      kind: "compensate",
      idx: 0,
    });
    expect(nextMove("COMPENSATING", ["COMPENSATED", "SKIPPED", "FAILED"])).toEqual({
      kind: "finish",
      state: "COMPENSATED",
    });
  });

  it("does nothing for a finished saga", () => {
    expect(nextMove("COMPLETED", ["SUCCEEDED"])).toEqual({ kind: "none" });
    expect(nextMove("FAILED", ["COMPENSATION_FAILED"])).toEqual({ kind: "none" });
  });
});
