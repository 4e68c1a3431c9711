/**
 * What a failed call or stream means for the worker, graded by gRPC code (and the contract's
 * ErrorInfo reason), never by message text:
 *
 * - transient (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, UNKNOWN, CANCELLED,
 *   a stream the server ended without a status): reconnect with bounded backoff;
 * - SESSION_INVALID (UNAUTHENTICATED on Connect): the session expired or was revoked, register
 *   again with the registration credential (which itself failing UNAUTHENTICATED is fatal);
 * - any other UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT, FAILED_PRECONDITION,
 *   UNIMPLEMENTED, and ABORTED STREAM_REPLACED (another process holds this agent's stream):
 *   fatal, no retry — repeating would fail the same way or fight the other process.
 */
import { Code, ServiceError } from "../mesh/errors.js";

export type FailureAction = "reconnect" | "reregister" | "fail";

export interface GradedFailure {
  action: FailureAction;
  code: Code;
  reason: string | undefined;
  message: string;
}

const TRANSIENT = new Set<Code>([
  Code.UNAVAILABLE,
  Code.DEADLINE_EXCEEDED,
  Code.RESOURCE_EXHAUSTED,
  Code.INTERNAL,
  Code.UNKNOWN,
  Code.CANCELLED,
]);

/** Grades a failure of the Connect stream or of RegisterAgent. */
export function gradeFailure(err: unknown): GradedFailure {
  const e = toServiceError(err);
  const base = { code: e.code, reason: e.reason, message: e.message };
  if (TRANSIENT.has(e.code)) return { action: "reconnect", ...base };
  if (e.code === Code.UNAUTHENTICATED && e.reason === "SESSION_INVALID")
    return { action: "reregister", ...base };
  return { action: "fail", ...base };
}

/** Whether a refused run-scoped message means the lease is gone: stop the run, drop its results. */
export function isStaleLease(code: number, reason: string | undefined): boolean {
  return code === Code.FAILED_PRECONDITION && reason === "STALE_LEASE";
}

/**
 * Errors from the mesh client are ServiceErrors already; anything else (a local bug, a socket
 * error surfacing raw) is treated as transient UNAVAILABLE, keeping the original as the cause.
 */
export function toServiceError(err: unknown): ServiceError {
  if (err instanceof ServiceError) return err;
  const grpcLike = err as { code?: unknown; details?: unknown; metadata?: unknown } | null;
  if (grpcLike && typeof grpcLike.code === "number" && "metadata" in grpcLike) return ServiceError.from(err);
  const message = err instanceof Error ? err.message : String(err);
  return new ServiceError(Code.UNAVAILABLE, message, [], { cause: err });
}
