/**
 * Pure decision logic for approval requests, which gate risky work: the scheduler never
 * starts gated work unless its request is APPROVED. Storage, clocks and identity are the
 * caller's; this module only answers "given this request, is this decision acceptable, and
 * what state follows?".
 */

export const APPROVAL_STATES = ["PENDING", "APPROVED", "REJECTED", "EXPIRED", "CANCELLED"] as const;
export type ApprovalState = (typeof APPROVAL_STATES)[number];

export type DecisionKind = "APPROVE" | "REJECT";

/** A recorded decision; the audit trail keeps these verbatim. */
export interface ApprovalDecision {
  readonly approver: string;
  readonly decision: DecisionKind;
  /** Trimmed; may be empty for approvals, never for rejections. */
  readonly reason: string;
  readonly time: Date;
}

export interface ApprovalRequest {
  readonly requestedBy: string;
  /** How many distinct approvers must approve; at least 1. */
  readonly requiredApprovals: number;
  readonly expireTime?: Date;
  readonly state: ApprovalState;
  readonly decisions: readonly ApprovalDecision[];
}

/** A decision as submitted, before it is checked and time-stamped. */
export interface DecisionInput {
  readonly approver: string;
  readonly decision: DecisionKind;
  readonly reason?: string;
}

export interface DecisionOutcome {
  /** The request's state once `decision` is recorded. */
  readonly state: ApprovalState;
  /** What to append to the request's decisions (and to the audit trail). */
  readonly decision: ApprovalDecision;
}

/**
 * Why a decision on an approval request was refused. One class per reason, each with a
 * stable `code`, so the gRPC boundary can map them (PERMISSION_DENIED for self-approval
 * and entitlement, FAILED_PRECONDITION for state, ALREADY_EXISTS for duplicates,
 * INVALID_ARGUMENT for a missing reason) without parsing messages.
 */
export abstract class ApprovalError extends Error {
  abstract readonly code:
    | "SELF_APPROVAL"
    | "DUPLICATE_DECISION"
    | "NOT_ENTITLED"
    | "EXPIRED"
    | "ALREADY_DECIDED"
    | "REASON_REQUIRED"
    | "INVALID_APPROVAL_REQUEST";
}

/** Four-eyes rule: the person who asked for the risky work cannot be the one to allow it. */
export class SelfApprovalError extends ApprovalError {
  readonly code = "SELF_APPROVAL";
  constructor(readonly approver: string) {
    super(`${approver} requested this work and cannot approve it; another approver must`);
    this.name = "SelfApprovalError";
  }
}

/** Each approver counts once; a second decision would let one person satisfy N approvals. */
export class DuplicateDecisionError extends ApprovalError {
  readonly code = "DUPLICATE_DECISION";
  constructor(readonly previous: ApprovalDecision) {
    super(`${previous.approver} already decided (${previous.decision}) on this request`);
    this.name = "DuplicateDecisionError";
  }
}

export class NotEntitledError extends ApprovalError {
  readonly code = "NOT_ENTITLED";
  constructor(
    readonly approver: string,
    readonly role: string,
    readonly allowedRoles: readonly string[],
  ) {
    const allowed =
      allowedRoles.length === 0 ? "no role may decide" : `allowed roles: ${allowedRoles.join(", ")}`;
    super(`${approver} has role ${role || "(none)"}, which may not decide on this request; ${allowed}`);
    this.name = "NotEntitledError";
  }
}

export class ExpiredError extends ApprovalError {
  readonly code = "EXPIRED";
  constructor(readonly expireTime: Date | undefined) {
    super(
      expireTime ? `approval request expired at ${expireTime.toISOString()}` : "approval request has expired",
    );
    this.name = "ExpiredError";
  }
}

export class AlreadyDecidedError extends ApprovalError {
  readonly code = "ALREADY_DECIDED";
  constructor(readonly state: ApprovalState) {
    super(`approval request is already ${state}; no further decisions are accepted`);
    this.name = "AlreadyDecidedError";
  }
}

/** A rejection stops work someone asked for; the requester is owed an explanation. */
export class ReasonRequiredError extends ApprovalError {
  readonly code = "REASON_REQUIRED";
  constructor() {
    super("a rejection needs a reason");
    this.name = "ReasonRequiredError";
  }
}

/** The request or decision itself is malformed (e.g. zero required approvals, no approver). */
export class InvalidApprovalRequestError extends ApprovalError {
  readonly code = "INVALID_APPROVAL_REQUEST";
  constructor(message: string) {
    super(message);
    this.name = "InvalidApprovalRequestError";
  }
}

/** Whether a request's deadline has passed at `now`. The deadline itself is already too late. */
export function isExpired(request: Pick<ApprovalRequest, "expireTime">, now: Date): boolean {
  return request.expireTime !== undefined && now.getTime() >= request.expireTime.getTime();
}

/**
 * The state the request is really in at `now`: a PENDING request past its deadline is
 * EXPIRED even before a sweeper has persisted that, so nothing may treat it as pending.
 */
export function effectiveState(request: ApprovalRequest, now: Date): ApprovalState {
  return request.state === "PENDING" && isExpired(request, now) ? "EXPIRED" : request.state;
}

/** Distinct approvers who approved so far. */
export function approvalCount(decisions: readonly ApprovalDecision[]): number {
  return new Set(decisions.filter((d) => d.decision === "APPROVE").map((d) => d.approver)).size;
}

/**
 * Checks one decision against the request and returns the resulting state with the record
 * to store. A single REJECT rejects (any approver can stop risky work); APPROVED needs
 * `requiredApprovals` distinct approvers. The requester may reject their own request (that
 * only stops work they asked for) but never approve it. Checks run from the request's condition to the
 * decider's standing to the decision's content, so the error explains the most basic obstacle.
 *
 * @param approverRole the decider's role in the project, from the authenticated caller
 * @param allowedRoles roles entitled to decide; empty means nobody (fail closed)
 * @throws ApprovalError subclasses: ExpiredError, AlreadyDecidedError,
 *   InvalidApprovalRequestError, NotEntitledError, SelfApprovalError, DuplicateDecisionError,
 *   ReasonRequiredError
 */
export function decide(
  request: ApprovalRequest,
  decision: DecisionInput,
  now: Date,
  approverRole: string,
  allowedRoles: readonly string[],
): DecisionOutcome {
  const state = effectiveState(request, now);
  if (state === "EXPIRED") throw new ExpiredError(request.expireTime);
  if (state !== "PENDING") throw new AlreadyDecidedError(state);
  if (!Number.isSafeInteger(request.requiredApprovals) || request.requiredApprovals < 1) {
    throw new InvalidApprovalRequestError(
      `requiredApprovals must be a whole number of at least 1, got ${request.requiredApprovals}`,
    );
  }
  const approver = decision.approver;
  if (approver.trim() === "") throw new InvalidApprovalRequestError("a decision needs an approver");

  if (!allowedRoles.includes(approverRole)) throw new NotEntitledError(approver, approverRole, allowedRoles);
  if (decision.decision === "APPROVE" && approver === request.requestedBy)
    throw new SelfApprovalError(approver);
  const previous = request.decisions.find((d) => d.approver === approver);
  if (previous) throw new DuplicateDecisionError(previous);

  const reason = decision.reason?.trim() ?? "";
  if (decision.decision === "REJECT" && reason === "") throw new ReasonRequiredError();

  const recorded: ApprovalDecision = { approver, decision: decision.decision, reason, time: now };
  if (decision.decision === "REJECT") return { state: "REJECTED", decision: recorded };
  const approvals = approvalCount([...request.decisions, recorded]);
  return { state: approvals >= request.requiredApprovals ? "APPROVED" : "PENDING", decision: recorded };
}
