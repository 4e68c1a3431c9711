import { describe, expect, it } from "vitest";
import { allowedFrom, needsNewRun } from "./transitions.js";

describe("allowedFrom", () => {
  it("lets a BLOCKED item resume only where it was blocked, or fail, or be cancelled", () => {
    expect(allowedFrom({ state: "BLOCKED", blockedFrom: "PROPOSED" })).toEqual([
      "PROPOSED",
      "CANCELLED",
      "FAILED",
    ]);
    expect(allowedFrom({ state: "BLOCKED", blockedFrom: "IN_PROGRESS" })).toEqual([
      "QUEUED",
      "CANCELLED",
      "FAILED",
    ]);
    expect(allowedFrom({ state: "BLOCKED", blockedFrom: null })).toEqual(["CANCELLED", "FAILED"]);
  });

  it("is the state machine's table elsewhere", () => {
    expect(allowedFrom({ state: "APPROVED", blockedFrom: null })).toEqual(["QUEUED", "CANCELLED", "BLOCKED"]);
    expect(allowedFrom({ state: "DONE", blockedFrom: null })).toEqual([]);
  });
});

describe("needsNewRun", () => {
  const alice = { type: "user" as const, id: "alice" };
  const scheduler = { type: "service" as const, id: "scheduler" };
  const saga = { type: "service" as const, id: "saga" };

  it("asks for a run after a retry or a review sent back, by anyone but the scheduler", () => {
    expect(needsNewRun("FAILED", "QUEUED", alice)).toBe(true);
    expect(needsNewRun("REVIEW", "IN_PROGRESS", alice)).toBe(true);
    expect(needsNewRun("FAILED", "QUEUED", saga)).toBe(true);
  });

  it("does not echo the scheduler's own moves back to it: it already has the task", () => {
    expect(needsNewRun("FAILED", "QUEUED", scheduler)).toBe(false);
    expect(needsNewRun("REVIEW", "IN_PROGRESS", scheduler)).toBe(false);
    expect(needsNewRun("BLOCKED", "QUEUED", alice)).toBe(false);
    expect(needsNewRun("APPROVED", "QUEUED", alice)).toBe(false);
  });
});
