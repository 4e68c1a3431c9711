import { describe, expect, it } from "vitest";
import { RunState } from "../gen/codex/agentmanager/v1/run_pb.js";
import { completionOf, truncateUtf8 } from "./outcome.js";
import { RunFailure } from "./types.js";

describe("completionOf", () => {
  it("maps a plain return to SUCCEEDED and honours an explicit result", () => {
    expect(completionOf({ returned: undefined }, undefined)).toEqual({
      status: RunState.SUCCEEDED,
      error: "",
    });
    expect(completionOf({ returned: { status: "FAILED", exitCode: 3, error: "bad" } }, undefined)).toEqual({
      status: RunState.FAILED,
      exitCode: 3,
      error: "bad",
    });
  });

  it("maps a throw to FAILED, with the exit code of a RunFailure", () => {
    expect(completionOf({ thrown: new RunFailure("step 2 exited 7", 7) }, undefined)).toEqual({
      status: RunState.FAILED,
      exitCode: 7,
      error: "step 2 exited 7",
    });
    expect(completionOf({ thrown: "boom" }, undefined)).toEqual({ status: RunState.FAILED, error: "boom" });
  });

  it("makes a cancelled run CANCELLED whatever the handler did", () => {
    expect(completionOf({ returned: undefined }, "stop it")).toEqual({
      status: RunState.CANCELLED,
      error: "stop it",
    });
    expect(completionOf({ thrown: new RunFailure("killed", 143) }, "stop it")).toEqual({
      status: RunState.CANCELLED,
      exitCode: 143,
      error: "killed",
    });
  });

  it("cuts errors to 4 KiB without splitting characters", () => {
    const c = completionOf({ thrown: new Error("é".repeat(4000)) }, undefined);
    expect(Buffer.byteLength(c.error)).toBeLessThanOrEqual(4096);
    expect(c.error.endsWith("é...")).toBe(true);
    expect(truncateUtf8("short", 10)).toBe("short");
  });
});
