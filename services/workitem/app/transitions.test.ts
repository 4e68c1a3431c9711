import { describe, expect, it } from "vitest";
import { allowedFrom } from "./transitions.js";

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
