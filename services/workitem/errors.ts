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
 * WorkItemService errors. The contract (proto/codex/workitem/v1/errors.proto) promises an
 * ErrorInfo with domain "codex.workitem.v1" and a reason from ErrorReason; mesh/errors.ts tags
 * its ErrorInfo with the mesh-wide domain, so this service builds its own details here.
 */
export const ERROR_DOMAIN = "codex.workitem.v1";

export type Reason =
  | "ETAG_MISMATCH"
  | "IDEMPOTENCY_KEY_REUSED"
  | "INVALID_TRANSITION"
  | "WRONG_STATE"
  | "APPROVAL_REQUIRED"
  | "INVALID_RECIPE"
  | "SELF_APPROVAL"
  | "ALREADY_DECIDED"
  | "NOT_AN_APPROVER"
  | "CHECKSUM_MISMATCH"
  | "SIZE_MISMATCH"
  | "ARTIFACT_TOO_LARGE"
  | "STALE_LEASE"
  | "SYSTEM_TRANSITION"
  | "PERMISSION_DENIED"
  | "UNAUTHENTICATED";

function info(reason: Reason, metadata: Record<string, string> = {}): Any {
  return anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason, domain: ERROR_DOMAIN, metadata }));
}

function badRequest(violations: readonly FieldViolation[]): Any {
  return anyPack(
    BadRequestSchema,
    create(BadRequestSchema, {
      fieldViolations: violations.map((v) => ({
        field: v.field,
        description: v.description,
        reason: v.reason ?? "",
      })),
    }),
  );
}

function precondition(type: string, subject: string, description: string): Any {
  return anyPack(
    PreconditionFailureSchema,
    create(PreconditionFailureSchema, { violations: [{ type, subject, description }] }),
  );
}

/** INVALID_ARGUMENT with one BadRequest violation per problem, and a reason when the contract names one. */
export function invalidArgument(message: string, violations: readonly FieldViolation[], reason?: Reason) {
  const details = [badRequest(violations)];
  if (reason) details.push(info(reason));
  return new ServiceError(Code.INVALID_ARGUMENT, message, details);
}

/** NOT_FOUND; also what a caller outside the project sees, so existence does not leak. */
export function notFound(resourceType: string, name: string): ServiceError {
  const res = create(ResourceInfoSchema, { resourceType, resourceName: name, description: "not found" });
  return new ServiceError(Code.NOT_FOUND, `${resourceType} "${name}" not found`, [
    anyPack(ResourceInfoSchema, res),
  ]);
}

/** ABORTED ETAG_MISMATCH: the caller's copy is stale; re-read and retry. */
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

/** FAILED_PRECONDITION with a contract reason and metadata. */
export function failedPrecondition(
  reason: Reason,
  subject: string,
  message: string,
  metadata: Record<string, string> = {},
): ServiceError {
  return new ServiceError(Code.FAILED_PRECONDITION, message, [
    precondition(reason, subject, message),
    info(reason, metadata),
  ]);
}

/** PERMISSION_DENIED with a reason (e.g. NOT_AN_APPROVER) and what was required. */
export function permissionDenied(
  message: string,
  reason: Reason = "PERMISSION_DENIED",
  metadata: Record<string, string> = {},
): ServiceError {
  return new ServiceError(Code.PERMISSION_DENIED, message, [info(reason, metadata)]);
}

export function unauthenticated(): ServiceError {
  return new ServiceError(Code.UNAUTHENTICATED, "authentication required", [info("UNAUTHENTICATED")]);
}

/** ALREADY_EXISTS naming the resource. */
export function alreadyExists(resourceType: string, name: string, description: string): ServiceError {
  const res = create(ResourceInfoSchema, { resourceType, resourceName: name, description });
  return new ServiceError(Code.ALREADY_EXISTS, `${resourceType} "${name}" ${description}`, [
    anyPack(ResourceInfoSchema, res),
  ]);
}

/** OUT_OF_RANGE, e.g. a download offset past the end. */
export function outOfRange(message: string, field: string): ServiceError {
  return new ServiceError(Code.OUT_OF_RANGE, message, [badRequest([{ field, description: message }])]);
}

/**
 * Collects field violations so a request is answered with every problem at once, then
 * throws one INVALID_ARGUMENT.
 */
export class Violations {
  readonly list: FieldViolation[] = [];

  add(field: string, description: string): void {
    this.list.push({ field, description });
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  throwIfAny(message = "invalid request"): void {
    if (this.list.length === 0) return;
    const first = this.list[0];
    throw invalidArgument(
      this.list.length === 1 && first ? `${message}: ${first.field} ${first.description}` : message,
      this.list,
    );
  }
}
