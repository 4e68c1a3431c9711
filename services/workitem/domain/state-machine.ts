/**
 * The WorkItem lifecycle as one explicit table. Every state change in the service goes
 * through {@link assertTransition}, so the table below is the whole truth about which
 * `WorkItemStateChanged` events can ever be emitted. States are string literals here; the
 * service maps them to the proto enum at its boundary.
 */

export const WORK_ITEM_STATES = [
  "PROPOSED",
  "APPROVED",
  "QUEUED",
  "IN_PROGRESS",
  "REVIEW",
  "DONE",
  "BLOCKED",
  "FAILED",
  "CANCELLED",
] as const;

export type WorkItemState = (typeof WORK_ITEM_STATES)[number];

/**
 * Allowed moves. Notable edges and why they exist:
 * - `QUEUED → APPROVED` unschedules work without losing its approval;
 * - `IN_PROGRESS → QUEUED` is an automatic retry after a lost lease or a retryable failure;
 * - `REVIEW → IN_PROGRESS` sends work back for changes;
 * - `BLOCKED → PROPOSED | APPROVED | QUEUED` resumes where the item stood before it was
 *   blocked (an item blocked while running resumes as `QUEUED`: its run was abandoned);
 * - `BLOCKED → FAILED` is the scheduler failing an item blocked on a dependency that failed
 *   for good (the contract's FAIL path for blocked dependents);
 * - `FAILED → QUEUED` is a manual retry;
 * - `DONE` and `CANCELLED` are terminal: reopening means creating a new work item, which
 *   keeps the audit trail of each attempt honest.
 */
const TRANSITIONS: Readonly<Record<WorkItemState, readonly WorkItemState[]>> = {
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

/** Narrows an untrusted string (a request field, a database row) to a state. */
export function isWorkItemState(value: unknown): value is WorkItemState {
  return typeof value === "string" && (WORK_ITEM_STATES as readonly string[]).includes(value);
}

/** States reachable in one move from `from`, in table order. */
export function allowedTransitions(from: WorkItemState): readonly WorkItemState[] {
  return TRANSITIONS[from];
}

/** Whether the item can never change state again. */
export function isTerminal(state: WorkItemState): boolean {
  return TRANSITIONS[state].length === 0;
}

/** Whether `from → to` is in the table. Staying in the same state is not a transition. */
export function canTransition(from: WorkItemState, to: WorkItemState): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * Where an item blocked from `blockedFrom` goes when unblocked. The table allows any of
 * `PROPOSED | APPROVED | QUEUED` from `BLOCKED`; the service records the state it blocked
 * from and uses this to pick the one that restores it.
 */
export function resumeStateAfterBlock(blockedFrom: WorkItemState): WorkItemState | undefined {
  switch (blockedFrom) {
    case "PROPOSED":
    case "APPROVED":
    case "QUEUED":
      return blockedFrom;
    case "IN_PROGRESS":
      return "QUEUED";
    default:
      return undefined;
  }
}

/**
 * A refused state change. Carries what the caller needs to explain or recover: the current
 * state, the requested one and the moves that would have been accepted (the gRPC layer
 * turns it into FAILED_PRECONDITION with a PreconditionFailure detail).
 */
export class IllegalTransitionError extends Error {
  readonly code = "ILLEGAL_TRANSITION";
  readonly from: WorkItemState;
  readonly to: WorkItemState;
  readonly allowed: readonly WorkItemState[];

  constructor(from: WorkItemState, to: WorkItemState) {
    const allowed = TRANSITIONS[from];
    const options =
      allowed.length === 0 ? `${from} is terminal` : `from ${from} it can move to ${allowed.join(", ")}`;
    super(`work item is ${from} and cannot move to ${to}; ${options}`);
    this.name = "IllegalTransitionError";
    this.from = from;
    this.to = to;
    this.allowed = allowed;
  }
}

/** Throws {@link IllegalTransitionError} unless `from → to` is allowed. */
export function assertTransition(from: WorkItemState, to: WorkItemState): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to);
}
