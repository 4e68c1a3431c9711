import { describe, expect, it } from "vitest";
import { Code, ServiceError } from "../mesh/errors.js";
import { gradeFailure, isStaleLease } from "./failure.js";
import { canTransition, WorkerLifecycle } from "./lifecycle.js";

describe("WorkerLifecycle", () => {
  it("follows the documented diagram and refuses other moves", () => {
    const l = new WorkerLifecycle();
    const seen: string[] = [];
    l.onChange((s, prev) => seen.push(`${prev}->${s}`));
    expect(l.transition("RUNNING", "skip")).toBe(false);
    expect(l.transition("CONNECTING", "start")).toBe(true);
    expect(l.transition("RUNNING", "welcome")).toBe(true);
    expect(l.transition("CONNECTING", "lost")).toBe(true);
    expect(l.transition("RUNNING", "welcome")).toBe(true);
    expect(l.transition("DRAINING", "sigterm")).toBe(true);
    expect(l.transition("RUNNING", "no way back")).toBe(false);
    expect(l.transition("STOPPED", "done")).toBe(true);
    expect(l.transition("FAILED", "too late")).toBe(false);
    expect(seen).toEqual([
      "INITIALIZED->CONNECTING",
      "CONNECTING->RUNNING",
      "RUNNING->CONNECTING",
      "CONNECTING->RUNNING",
      "RUNNING->DRAINING",
      "DRAINING->STOPPED",
    ]);
    expect(canTransition("DRAINING", "FAILED")).toBe(true);
    expect(canTransition("STOPPED", "CONNECTING")).toBe(false);
  });
});

describe("gradeFailure", () => {
  const err = (code: Code, reason?: string) => {
    const e = new ServiceError(code, "x");
    if (reason) Object.defineProperty(e, "reason", { value: reason });
    return e;
  };

  it("reconnects on transient codes", () => {
    for (const code of [Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.INTERNAL, Code.RESOURCE_EXHAUSTED]) {
      expect(gradeFailure(err(code)).action).toBe("reconnect");
    }
    expect(gradeFailure(new Error("socket hang up")).action).toBe("reconnect");
  });

  it("re-registers on an invalid session and fails on other credential or protocol errors", () => {
    expect(gradeFailure(err(Code.UNAUTHENTICATED, "SESSION_INVALID")).action).toBe("reregister");
    expect(gradeFailure(err(Code.UNAUTHENTICATED)).action).toBe("fail");
    expect(gradeFailure(err(Code.PERMISSION_DENIED)).action).toBe("fail");
    expect(gradeFailure(err(Code.FAILED_PRECONDITION)).action).toBe("fail");
    expect(gradeFailure(err(Code.ABORTED, "STREAM_REPLACED")).action).toBe("fail");
  });

  it("recognises a stale lease only by code and reason", () => {
    expect(isStaleLease(Code.FAILED_PRECONDITION, "STALE_LEASE")).toBe(true);
    expect(isStaleLease(Code.FAILED_PRECONDITION, "WRONG_STATE")).toBe(false);
    expect(isStaleLease(Code.ABORTED, "STALE_LEASE")).toBe(false);
  });
});
