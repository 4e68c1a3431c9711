/**
 * The agent manager's refusals, each carrying a google.rpc.ErrorInfo in the contract's domain
 * ("codex.agentmanager.v1") with a reason from errors.proto, so agents branch on the reason
 * rather than on message text. On the Connect stream the same code and reason travel in a
 * StreamError (see {@link streamErrorOf}).
 */
import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { RunState } from "../../gen/codex/agentmanager/v1/run_pb.js";
import { ErrorInfoSchema, PreconditionFailureSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Code, invalidArgument, ServiceError } from "../../mesh/errors.js";

export const ERROR_DOMAIN = "codex.agentmanager.v1";

/** Reasons of errors.proto, without the ERROR_REASON_ prefix. */
export type Reason =
  | "ETAG_MISMATCH"
  | "IDEMPOTENCY_KEY_REUSED"
  | "STALE_LEASE"
  | "WRONG_STATE"
  | "SESSION_INVALID"
  | "NOT_LEASE_HOLDER"
  | "AGENT_NOT_ONLINE"
  | "ANSWER_INCOMPLETE"
  | "STREAM_REPLACED";

function errorInfo(reason: Reason, metadata: Record<string, string> = {}) {
  return anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason, domain: ERROR_DOMAIN, metadata }));
}

function precondition(
  message: string,
  reason: Reason,
  subject: string,
  metadata: Record<string, string>,
): ServiceError {
  const pf = create(PreconditionFailureSchema, {
    violations: [{ type: reason, subject, description: message }],
  });
  return new ServiceError(Code.FAILED_PRECONDITION, message, [
    anyPack(PreconditionFailureSchema, pf),
    errorInfo(reason, metadata),
  ]);
}

/** Name of a run state without its prefix, e.g. "RUNNING". */
export function stateName(state: RunState): string {
  return RunState[state] ?? "UNSPECIFIED";
}

/** The caller's fencing token is not the run's current lease: stop the run, drop its results. */
export function staleLease(runId: string, current: RunState): ServiceError {
  return precondition(
    `the lease on run ${runId} is no longer held (run is ${stateName(current)}): stop it and drop its results`,
    "STALE_LEASE",
    `run/${runId}`,
    { run_id: runId, current_state: stateName(current) },
  );
}

/** The operation is not allowed in the resource's current state. */
export function wrongState(message: string, subject: string, currentState: string): ServiceError {
  return precondition(message, "WRONG_STATE", subject, { current_state: currentState });
}

/** A DRAINING or OFFLINE agent asked for work. */
export function agentNotOnline(agentId: string, state: string): ServiceError {
  return precondition(
    `agent ${agentId} is ${state} and takes no new runs`,
    "AGENT_NOT_ONLINE",
    `agent/${agentId}`,
    {
      current_state: state,
    },
  );
}

/** A request id was replayed with a different request. */
export function idempotencyKeyReused(field = "request_id"): ServiceError {
  return precondition(
    `${field} was already used with a different request`,
    "IDEMPOTENCY_KEY_REUSED",
    field,
    {},
  );
}

/** The session token is unknown, revoked or expired. */
export function sessionInvalid(message = "the agent session is invalid, revoked or expired; register again") {
  return new ServiceError(Code.UNAUTHENTICATED, message, [errorInfo("SESSION_INVALID")]);
}

/** The run is leased to another agent than the caller. */
export function notLeaseHolder(runId: string): ServiceError {
  return new ServiceError(Code.PERMISSION_DENIED, `run ${runId} is leased to another agent`, [
    errorInfo("NOT_LEASE_HOLDER", { run_id: runId }),
  ]);
}

/** Optimistic concurrency: the etag sent is not current. */
export function etagMismatch(subject: string): ServiceError {
  return new ServiceError(Code.ABORTED, `${subject} was changed since it was read: re-read and retry`, [
    errorInfo("ETAG_MISMATCH"),
  ]);
}

/** Another Connect stream of the same agent replaced this one. */
export function streamReplaced(agentId: string): ServiceError {
  return new ServiceError(Code.ABORTED, `a newer Connect stream of agent ${agentId} replaced this one`, [
    errorInfo("STREAM_REPLACED"),
  ]);
}

/** An answer misses a field of the info request, or names an unknown one. */
export function answerIncomplete(field: string, description: string): ServiceError {
  const err = invalidArgument(`answer incomplete: ${description}`, [
    { field: `values["${field}"]`, description },
  ]);
  err.details.push(errorInfo("ANSWER_INCOMPLETE", { field }));
  return err;
}

/** Code, reason and message of an error, for a StreamError on the Connect stream. */
export function streamErrorOf(err: unknown): { code: Code; reason: string; message: string } {
  const e = ServiceError.from(err);
  return { code: e.code, reason: e.reason ?? "", message: e.message };
}
