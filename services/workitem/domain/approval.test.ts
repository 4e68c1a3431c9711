import { describe, expect, it } from "vitest";
import {
  AlreadyDecidedError,
  type ApprovalDecision,
  ApprovalError,
  type ApprovalRequest,
  approvalCount,
  DuplicateDecisionError,
  decide,
  ExpiredError,
  effectiveState,
  InvalidApprovalRequestError,
  NotEntitledError,
  ReasonRequiredError,
  SelfApprovalError,
} from "./approval.js";

const NOW = new Date("2026-11-27T12:00:00Z");
const ROLES = ["owner", "approver"];

function request(overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return { requestedBy: "alice", requiredApprovals: 1, state: "PENDING", decisions: [], ...overrides };
}

function approval(approver: string): ApprovalDecision {
  return { approver, decision: "APPROVE", reason: "", time: new Date("2026-11-27T11:00:00Z") };
}

/** Runs `fn` and returns what it threw, so tests can assert on the error's fields. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
}

describe("decide", () => {
  it("approves with one approval when one is required, recording the decision", () => {
    const outcome = decide(
      request(),
      { approver: "bob", decision: "APPROVE", reason: "  looks fine " },
      NOW,
      "owner",
      ROLES,
    );
    expect(outcome).toEqual({
      state: "APPROVED",
      decision: { approver: "bob", decision: "APPROVE", reason: "looks fine", time: NOW },
    });
  });

  it("stays pending until the required number of distinct approvers approve", () => {
    const first = decide(
      request({ requiredApprovals: 2 }),
      { approver: "bob", decision: "APPROVE" },
      NOW,
      "approver",
      ROLES,
    );
    expect(first.state).toBe("PENDING");
    const second = decide(
      request({ requiredApprovals: 2, decisions: [first.decision] }),
      { approver: "carol", decision: "APPROVE" },
      NOW,
      "approver",
      ROLES,
    );
    expect(second.state).toBe("APPROVED");
    expect(approvalCount([first.decision, second.decision])).toBe(2);
  });

  it("rejects on a single rejection, even after approvals, and requires a reason", () => {
    const req = request({ requiredApprovals: 3, decisions: [approval("bob"), approval("carol")] });
    const outcome = decide(
      req,
      { approver: "dave", decision: "REJECT", reason: "not during freeze" },
      NOW,
      "owner",
      ROLES,
    );
    expect(outcome.state).toBe("REJECTED");
    expect(outcome.decision.reason).toBe("not during freeze");
    for (const reason of [undefined, "", "   "]) {
      const input =
        reason === undefined
          ? { approver: "dave", decision: "REJECT" as const }
          : { approver: "dave", decision: "REJECT" as const, reason };
      expect(() => decide(req, input, NOW, "owner", ROLES)).toThrow(ReasonRequiredError);
    }
  });

  it("refuses self-approval but lets the requester reject their own request", () => {
    const error = thrown(() =>
      decide(request(), { approver: "alice", decision: "APPROVE" }, NOW, "owner", ROLES),
    );
    expect(error).toBeInstanceOf(SelfApprovalError);
    expect(error).toMatchObject({ code: "SELF_APPROVAL", approver: "alice" });
    const own = decide(
      request(),
      { approver: "alice", decision: "REJECT", reason: "wrong target" },
      NOW,
      "owner",
      ROLES,
    );
    expect(own.state).toBe("REJECTED");
  });

  it("refuses a second decision by the same approver", () => {
    const req = request({ requiredApprovals: 2, decisions: [approval("bob")] });
    const error = thrown(() => decide(req, { approver: "bob", decision: "APPROVE" }, NOW, "owner", ROLES));
    expect(error).toBeInstanceOf(DuplicateDecisionError);
    expect((error as DuplicateDecisionError).previous.approver).toBe("bob");
    expect(() =>
      decide(req, { approver: "bob", decision: "REJECT", reason: "changed my mind" }, NOW, "owner", ROLES),
    ).toThrow(DuplicateDecisionError);
  });

  it("refuses deciders without an allowed role, and everyone when no role is allowed", () => {
    const error = thrown(() =>
      decide(request(), { approver: "bob", decision: "APPROVE" }, NOW, "viewer", ROLES),
    );
    expect(error).toBeInstanceOf(NotEntitledError);
    expect(error).toMatchObject({ role: "viewer", allowedRoles: ROLES });
    expect(() => decide(request(), { approver: "bob", decision: "APPROVE" }, NOW, "owner", [])).toThrow(
      NotEntitledError,
    );
  });

  it("refuses decisions at or after the deadline, and on requests already marked expired", () => {
    const expireTime = new Date(NOW.getTime());
    const error = thrown(() =>
      decide(request({ expireTime }), { approver: "bob", decision: "APPROVE" }, NOW, "owner", ROLES),
    );
    expect(error).toBeInstanceOf(ExpiredError);
    expect((error as Error).message).toContain("2026-11-27T12:00:00.000Z");
    const before = new Date(NOW.getTime() - 1);
    expect(
      decide(request({ expireTime }), { approver: "bob", decision: "APPROVE" }, before, "owner", ROLES).state,
    ).toBe("APPROVED");
    expect(() =>
      decide(request({ state: "EXPIRED" }), { approver: "bob", decision: "APPROVE" }, NOW, "owner", ROLES),
    ).toThrow(ExpiredError);
  });

  it.each(["APPROVED", "REJECTED", "CANCELLED"] as const)("refuses decisions on %s requests", (state) => {
    const error = thrown(() =>
      decide(request({ state }), { approver: "bob", decision: "APPROVE" }, NOW, "owner", ROLES),
    );
    expect(error).toBeInstanceOf(AlreadyDecidedError);
    expect(error).toMatchObject({ code: "ALREADY_DECIDED", state });
  });

  it("refuses malformed requests and decisions", () => {
    for (const requiredApprovals of [0, -1, 1.5, Number.NaN]) {
      expect(() =>
        decide(request({ requiredApprovals }), { approver: "bob", decision: "APPROVE" }, NOW, "owner", ROLES),
      ).toThrow(InvalidApprovalRequestError);
    }
    expect(() => decide(request(), { approver: " ", decision: "APPROVE" }, NOW, "owner", ROLES)).toThrow(
      InvalidApprovalRequestError,
    );
  });

  it("reports the most basic obstacle first", () => {
    // Expired beats everything else wrong with this decision (self, wrong role, no reason).
    const req = request({ expireTime: new Date(0) });
    expect(() => decide(req, { approver: "alice", decision: "REJECT" }, NOW, "viewer", ROLES)).toThrow(
      ExpiredError,
    );
    // Entitlement is checked before the four-eyes rule.
    expect(() => decide(request(), { approver: "alice", decision: "APPROVE" }, NOW, "viewer", ROLES)).toThrow(
      NotEntitledError,
    );
  });

  it("gives every refusal a common base class and a stable code", () => {
    const error = thrown(() =>
      decide(request({ state: "APPROVED" }), { approver: "bob", decision: "APPROVE" }, NOW, "owner", ROLES),
    );
    expect(error).toBeInstanceOf(ApprovalError);
    expect(error).toBeInstanceOf(Error);
  });
});

describe("effectiveState", () => {
  it("treats a pending request past its deadline as expired, and leaves decided ones alone", () => {
    const expireTime = new Date(NOW.getTime() - 1000);
    expect(effectiveState(request({ expireTime }), NOW)).toBe("EXPIRED");
    expect(effectiveState(request({ expireTime, state: "APPROVED" }), NOW)).toBe("APPROVED");
    expect(effectiveState(request(), NOW)).toBe("PENDING");
  });
});
