import { describe, expect, it } from "vitest";
import {
  allowedTransitions,
  assertTransition,
  canTransition,
  IllegalTransitionError,
  isTerminal,
  isWorkItemState,
  resumeStateAfterBlock,
  WORK_ITEM_STATES,
  type WorkItemState,
} from "./state-machine.js";

/** The contract's table (proto WorkItemState), written independently of the implementation so a typo in either shows. */
const EXPECTED: Record<WorkItemState, WorkItemState[]> = {
  PROPOSED: ["APPROVED", "CANCELLED", "BLOCKED"],
  APPROVED: ["QUEUED", "CANCELLED", "BLOCKED"],
  QUEUED: ["IN_PROGRESS", "BLOCKED", "CANCELLED", "FAILED", "APPROVED"],
  IN_PROGRESS: ["REVIEW", "DONE", "FAILED", "QUEUED", "CANCELLED", "BLOCKED"],
  REVIEW: ["DONE", "IN_PROGRESS", "FAILED", "CANCELLED"],
  BLOCKED: ["PROPOSED", "APPROVED", "QUEUED", "CANCELLED", "FAILED"],
  FAILED: ["QUEUED", "CANCELLED"],
  DONE: [],
  CANCELLED: [],
};

describe("work item state machine", () => {
  it("allows exactly the transitions of the table, for every pair of states", () => {
    for (const from of WORK_ITEM_STATES) {
      for (const to of WORK_ITEM_STATES) {
        expect(canTransition(from, to), `${from} → ${to}`).toBe(EXPECTED[from].includes(to));
      }
      expect([...allowedTransitions(from)].sort()).toEqual([...EXPECTED[from]].sort());
    }
  });

  it("walks the happy path and the detours", () => {
    const paths: WorkItemState[][] = [
      ["PROPOSED", "APPROVED", "QUEUED", "IN_PROGRESS", "REVIEW", "DONE"],
      [
        "PROPOSED",
        "APPROVED",
        "QUEUED",
        "APPROVED",
        "QUEUED",
        "IN_PROGRESS",
        "QUEUED",
        "IN_PROGRESS",
        "DONE",
      ],
      ["QUEUED", "IN_PROGRESS", "FAILED", "QUEUED", "IN_PROGRESS", "REVIEW", "IN_PROGRESS", "REVIEW", "DONE"],
      ["APPROVED", "BLOCKED", "APPROVED", "CANCELLED"],
      ["QUEUED", "BLOCKED", "FAILED", "QUEUED"],
    ];
    for (const path of paths) {
      for (let i = 1; i < path.length; i++) {
        expect(() => assertTransition(path[i - 1] as WorkItemState, path[i] as WorkItemState)).not.toThrow();
      }
    }
  });

  it("treats DONE and CANCELLED as terminal, and only them", () => {
    expect(WORK_ITEM_STATES.filter(isTerminal)).toEqual(["DONE", "CANCELLED"]);
  });

  it("refuses self-transitions", () => {
    for (const state of WORK_ITEM_STATES) expect(canTransition(state, state)).toBe(false);
  });

  it("throws an error naming the current state, the target and the allowed moves", () => {
    let caught: unknown;
    try {
      assertTransition("PROPOSED", "DONE");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(IllegalTransitionError);
    const error = caught as IllegalTransitionError;
    expect(error).toMatchObject({
      from: "PROPOSED",
      to: "DONE",
      allowed: ["APPROVED", "CANCELLED", "BLOCKED"],
    });
    expect(error.code).toBe("ILLEGAL_TRANSITION");
    expect(error.message).toBe(
      "work item is PROPOSED and cannot move to DONE; from PROPOSED it can move to APPROVED, CANCELLED, BLOCKED",
    );
    expect(() => assertTransition("DONE", "QUEUED")).toThrow(
      "work item is DONE and cannot move to QUEUED; DONE is terminal",
    );
  });

  it("resumes a blocked item where it stood, re-queueing one that was running", () => {
    expect(resumeStateAfterBlock("PROPOSED")).toBe("PROPOSED");
    expect(resumeStateAfterBlock("APPROVED")).toBe("APPROVED");
    expect(resumeStateAfterBlock("QUEUED")).toBe("QUEUED");
    expect(resumeStateAfterBlock("IN_PROGRESS")).toBe("QUEUED");
    expect(resumeStateAfterBlock("DONE")).toBeUndefined();
    for (const from of WORK_ITEM_STATES) {
      const resume = resumeStateAfterBlock(from);
      if (canTransition(from, "BLOCKED")) expect(resume && canTransition("BLOCKED", resume), from).toBe(true);
    }
  });

  it("narrows untrusted strings", () => {
    expect(isWorkItemState("QUEUED")).toBe(true);
    expect(isWorkItemState("queued")).toBe(false);
    expect(isWorkItemState(3)).toBe(false);
  });
});
