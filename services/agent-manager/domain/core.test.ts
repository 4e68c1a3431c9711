import { describe, expect, it } from "vitest";
import { RunState } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { isPlatformAdmin, mayAccessProject, mayRegister, readableProjects } from "./authz.js";
import { afterLeaseExpiry, checkLease, isCompletionReplay } from "./run-state.js";
import { checkAnswer, checkInfoFields } from "./validation.js";

const run = { state: RunState.RUNNING, fencingToken: 3n, agentId: "a" };

describe("lease rules", () => {
  it("accepts only the current token of the holder while the run is leased", () => {
    expect(checkLease(run, "a", 3n)).toBeUndefined();
    expect(checkLease(run, "a", 2n)).toBe("STALE_LEASE");
    expect(checkLease(run, "a", 4n)).toBe("STALE_LEASE");
    expect(checkLease(run, "b", 3n)).toBe("NOT_LEASE_HOLDER");
    expect(checkLease({ ...run, state: RunState.PENDING }, "a", 3n)).toBe("STALE_LEASE");
    expect(checkLease({ ...run, state: RunState.SUCCEEDED }, "a", 3n)).toBe("STALE_LEASE");
  });

  it("treats a completion with the recorded token, holder and outcome as a replay", () => {
    const done = { ...run, state: RunState.FAILED };
    expect(isCompletionReplay(done, "a", 3n, RunState.FAILED)).toBe(true);
    expect(isCompletionReplay(done, "a", 3n, RunState.SUCCEEDED)).toBe(false);
    expect(isCompletionReplay(done, "b", 3n, RunState.FAILED)).toBe(false);
  });

  it("requeues expired leases until the max-th expiry, which loses the run", () => {
    expect(afterLeaseExpiry(0, 3)).toEqual({ state: RunState.PENDING, expiries: 1, requeued: true });
    expect(afterLeaseExpiry(2, 3)).toEqual({ state: RunState.LOST, expiries: 3, requeued: false });
    expect(afterLeaseExpiry(0, 1).state).toBe(RunState.LOST);
  });
});

describe("authorization", () => {
  const viewer = { type: "user" as const, id: "v", projectRoles: { p1: "VIEWER" } };
  const maintainer = { type: "user" as const, id: "m", projectRoles: { p1: "member_role_maintainer" } };
  it("lets viewers read and maintainers maintain their projects only", () => {
    expect(mayAccessProject(viewer, "p1", "read")).toBe(true);
    expect(mayAccessProject(viewer, "p1", "maintain")).toBe(false);
    expect(mayAccessProject(maintainer, "p1", "maintain")).toBe(true);
    expect(mayAccessProject(maintainer, "p2", "read")).toBe(false);
    expect(mayAccessProject({ type: "agent", id: "a", projectRoles: { p1: "owner" } }, "p1", "read")).toBe(
      false,
    );
    expect(readableProjects(viewer)).toEqual(["p1"]);
    expect(isPlatformAdmin({ type: "user", id: "r", projectRoles: { "*": "admin" } })).toBe(true);
    expect(mayRegister({ type: "api_key", id: "k", projectRoles: { p1: "agent" } })).toBe(true);
    expect(mayRegister(viewer)).toBe(false);
  });
});

describe("validation", () => {
  it("checks info fields and answers", () => {
    expect(checkInfoFields([{ name: "A" }, { name: "A" }, { name: "b-c" }]).map((p) => p.field)).toEqual([
      "fields[1].name",
      "fields[2].name",
    ]);
    expect(checkAnswer(["A", "B"], { A: "1" }).incomplete?.field).toBe("B");
    expect(checkAnswer(["A"], { A: "1", C: "2" }).incomplete?.field).toBe("C");
    expect(checkAnswer(["A"], { A: "x".repeat(70_000) }).problems).toHaveLength(1);
  });
});
