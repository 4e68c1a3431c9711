import { create } from "@bufbuild/protobuf";
import { type Any, anyPack } from "@bufbuild/protobuf/wkt";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  PreconditionFailureSchema,
  ResourceInfoSchema,
} from "../../gen/google/rpc/error_details_pb.js";
import { Code, type FieldViolation, ServiceError } from "../../mesh/errors.js";

/**
 * SchedulerService errors. The contract (proto/codex/scheduler/v1/errors.proto) promises an
 * ErrorInfo with domain "codex.scheduler.v1" and a reason from ErrorReason, so the details are
 * built here rather than with mesh/errors.ts (which tags the mesh-wide domain).
 */
export const ERROR_DOMAIN = "codex.scheduler.v1";

export type Reason =
  | "ETAG_MISMATCH"
  | "IDEMPOTENCY_KEY_REUSED"
  | "DEPENDENCY_CYCLE"
  | "ALREADY_SCHEDULED"
  | "WRONG_STATE"
  | "UNKNOWN_DEPENDENCY"
  | "PERMISSION_DENIED"
  | "UNAUTHENTICATED";

function info(reason: Reason, metadata: Record<string, string> = {}): Any {
  return anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason, domain: ERROR_DOMAIN, metadata }));
}

function precondition(type: string, subject: string, description: string): Any {
  return anyPack(
    PreconditionFailureSchema,
    create(PreconditionFailureSchema, { violations: [{ type, subject, description }] }),
  );
}

/** INVALID_ARGUMENT with one BadRequest violation per problem, and a reason when the contract names one. */
export function invalidArgument(
  message: string,
  violations: readonly FieldViolation[],
  reason?: Reason,
  metadata: Record<string, string> = {},
): ServiceError {
  const bad = create(BadRequestSchema, {
    fieldViolations: violations.map((v) => ({
      field: v.field,
      description: v.description,
      reason: v.reason ?? "",
    })),
  });
  const details = [anyPack(BadRequestSchema, bad)];
  if (reason) details.push(info(reason, metadata));
  return new ServiceError(Code.INVALID_ARGUMENT, message, details);
}

/** NOT_FOUND; also what a caller without a role in the project sees, so existence does not leak. */
export function notFound(resourceType: string, name: string): ServiceError {
  const res = create(ResourceInfoSchema, { resourceType, resourceName: name, description: "not found" });
  return new ServiceError(Code.NOT_FOUND, `${resourceType} "${name}" not found`, [
    anyPack(ResourceInfoSchema, res),
  ]);
}

/** ABORTED ETAG_MISMATCH. */
export function etagMismatch(subject: string): ServiceError {
  return new ServiceError(Code.ABORTED, `${subject} was modified concurrently; re-read it and retry`, [
    info("ETAG_MISMATCH", { resource: subject }),
  ]);
}

/** FAILED_PRECONDITION WRONG_STATE naming the current state. */
export function wrongState(subject: string, currentState: string, message: string): ServiceError {
  return new ServiceError(Code.FAILED_PRECONDITION, message, [
    precondition("STATE", subject, message),
    info("WRONG_STATE", { current_state: currentState }),
  ]);
}

/** FAILED_PRECONDITION DEPENDENCY_CYCLE: metadata "cycle" and a PreconditionFailure repeat the cycle. */
export function dependencyCycle(workItemId: string, cycle: readonly string[]): ServiceError {
  const text = cycle.join(" -> ");
  return new ServiceError(Code.FAILED_PRECONDITION, `dependencies would form a cycle: ${text}`, [
    precondition("DEPENDENCY_CYCLE", `work_items/${workItemId}`, text),
    info("DEPENDENCY_CYCLE", { cycle: text }),
  ]);
}

/** ALREADY_EXISTS ALREADY_SCHEDULED naming the live task. */
export function alreadyScheduled(workItemId: string, taskId: string): ServiceError {
  const res = create(ResourceInfoSchema, {
    resourceType: "task",
    resourceName: taskId,
    description: `work item ${workItemId} already has a non-terminal task`,
  });
  return new ServiceError(
    Code.ALREADY_EXISTS,
    `work item "${workItemId}" is already scheduled as task ${taskId}`,
    [anyPack(ResourceInfoSchema, res), info("ALREADY_SCHEDULED", { task_id: taskId })],
  );
}

/** FAILED_PRECONDITION IDEMPOTENCY_KEY_REUSED. */
export function idempotencyKeyReused(requestId: string): ServiceError {
  const message = `request_id "${requestId}" was already used with a different request`;
  return new ServiceError(Code.FAILED_PRECONDITION, message, [
    precondition("IDEMPOTENCY_KEY_REUSED", `request_id/${requestId}`, message),
    info("IDEMPOTENCY_KEY_REUSED", { request_id: requestId }),
  ]);
}

/** INVALID_ARGUMENT UNKNOWN_DEPENDENCY. */
export function unknownDependency(field: string, workItemId: string, why: string): ServiceError {
  return invalidArgument(
    `dependency "${workItemId}" ${why}`,
    [{ field, description: `work item "${workItemId}" ${why}` }],
    "UNKNOWN_DEPENDENCY",
    { work_item_id: workItemId },
  );
}

export function permissionDenied(message: string, metadata: Record<string, string> = {}): ServiceError {
  return new ServiceError(Code.PERMISSION_DENIED, message, [info("PERMISSION_DENIED", metadata)]);
}

export function unauthenticated(): ServiceError {
  return new ServiceError(Code.UNAUTHENTICATED, "authentication required", [info("UNAUTHENTICATED")]);
}

/** Collects field violations so a request is answered with every problem at once. */
export class Violations {
  readonly list: FieldViolation[] = [];

  add(field: string, description: string): this {
    this.list.push({ field, description });
    return this;
  }

  throwIfAny(message = "invalid request"): void {
    const first = this.list[0];
    if (!first) return;
    throw invalidArgument(
      this.list.length === 1 ? `${message}: ${first.field} ${first.description}` : message,
      this.list,
    );
  }
}

/**
 * Codes the saga contract retries with the same request id (the call may not have happened, or
 * may succeed later); every other failure is final.
 */
export const RETRYABLE_CODES: ReadonlySet<Code> = new Set([
  Code.UNAVAILABLE,
  Code.DEADLINE_EXCEEDED,
  Code.ABORTED,
  Code.INTERNAL,
]);

export function isRetryable(err: unknown): boolean {
  return RETRYABLE_CODES.has(ServiceError.from(err).code);
}
