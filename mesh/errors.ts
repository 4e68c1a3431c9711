import {
  create,
  createRegistry,
  type DescMessage,
  fromBinary,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { type Any, anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import { status as Code, Metadata } from "@grpc/grpc-js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  PreconditionFailureSchema,
  QuotaFailureSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";

export { Code };

/** Metadata key carrying a serialized google.rpc.Status (the gRPC "rich error" convention). */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

/** The google.rpc detail messages we produce and understand. */
export const errorDetailRegistry = createRegistry(
  BadRequestSchema,
  ErrorInfoSchema,
  PreconditionFailureSchema,
  QuotaFailureSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
);

/** One invalid field: `field` is a path such as `project.name` or `tools[1].checksum`. */
export type FieldViolation = { field: string; description: string; reason?: string };
/** One unmet precondition, e.g. `{type: "STATE", subject: "work_item/123", description: "..."}`. */
export type PreconditionViolation = { type: string; subject: string; description: string };

/**
 * The one error type that crosses service boundaries. Domain code throws it (through the
 * helpers below); the gRPC adapter turns it into a status with google.rpc details, and the
 * client side turns such a status back into a ServiceError. `cause` is kept for logs and is
 * never sent to callers.
 */
export class ServiceError extends Error {
  override readonly name = "ServiceError";
  readonly code: Code;
  readonly details: Any[];

  constructor(code: Code, message: string, details: Any[] = [], options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  /**
   * Wraps anything thrown into a ServiceError. Unknown errors become INTERNAL with a generic
   * message: their text may hold internals (SQL, hostnames) callers must not see.
   */
  static from(err: unknown): ServiceError {
    if (err instanceof ServiceError) return err;
    if (isGrpcStatusError(err)) return fromGrpcStatus(err);
    return new ServiceError(Code.INTERNAL, "internal error", [], { cause: err });
  }

  /** The first detail of the given type, decoded, if present. */
  findDetail<Desc extends DescMessage>(schema: Desc): MessageShape<Desc> | undefined {
    for (const any of this.details) {
      const msg = anyUnpack(any, schema);
      if (msg) return msg;
    }
    return undefined;
  }

  /** The ErrorInfo reason (e.g. "STALE_LEASE"), when the error carries one. */
  get reason(): string | undefined {
    return this.findDetail(ErrorInfoSchema)?.reason;
  }

  /** Server-suggested retry delay (google.rpc.RetryInfo), honoured by mesh/resilience/retry. */
  get retryAfterMs(): number | undefined {
    return retryDelayMs(this);
  }

  /** Serializes to google.rpc.Status bytes for the grpc-status-details-bin trailer. */
  toStatusBytes(): Uint8Array {
    return toBinary(
      StatusSchema,
      create(StatusSchema, { code: this.code, message: this.message, details: this.details }),
    );
  }
}

type GrpcStatusError = Error & { code: number; details?: string; metadata?: Metadata };

function isGrpcStatusError(err: unknown): err is GrpcStatusError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === "number" && "metadata" in err;
}

/** Rebuilds a ServiceError from a status received by a grpc-js client, details included. */
function fromGrpcStatus(err: GrpcStatusError): ServiceError {
  const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0];
  let details: Any[] = [];
  let message = err.details ?? err.message;
  if (raw instanceof Buffer) {
    try {
      const st = fromBinary(StatusSchema, raw);
      details = st.details;
      message = st.message || message;
    } catch {
      // A malformed trailer must not hide the status code itself.
    }
  }
  return new ServiceError(err.code as Code, message, details, { cause: err });
}

/** Domain used in ErrorInfo when a service names none (contracts may name their package). */
export const DEFAULT_ERROR_DOMAIN = "codex.orchestrator";

/** A google.rpc.ErrorInfo detail: a machine-readable reason, its domain and metadata. */
export function errorInfo(
  reason: string,
  metadata: Record<string, string> = {},
  domain = DEFAULT_ERROR_DOMAIN,
): Any {
  return anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason, domain, metadata }));
}
const info = errorInfo;

/** INVALID_ARGUMENT with one BadRequest field violation per problem. */
export function invalidArgument(message: string, violations: FieldViolation[] = []): ServiceError {
  const bad = create(BadRequestSchema, {
    fieldViolations: violations.map((v) => ({
      field: v.field,
      description: v.description,
      reason: v.reason ?? "",
    })),
  });
  return new ServiceError(Code.INVALID_ARGUMENT, message, [anyPack(BadRequestSchema, bad)]);
}

/** NOT_FOUND naming the resource type and id. */
export function notFound(resourceType: string, resourceName: string): ServiceError {
  const res = create(ResourceInfoSchema, { resourceType, resourceName, description: "not found" });
  return new ServiceError(Code.NOT_FOUND, `${resourceType} "${resourceName}" not found`, [
    anyPack(ResourceInfoSchema, res),
  ]);
}

/** ALREADY_EXISTS naming the resource type and id. */
export function alreadyExists(resourceType: string, resourceName: string, description = "already exists") {
  const res = create(ResourceInfoSchema, { resourceType, resourceName, description });
  return new ServiceError(Code.ALREADY_EXISTS, `${resourceType} "${resourceName}" ${description}`, [
    anyPack(ResourceInfoSchema, res),
  ]);
}

/** FAILED_PRECONDITION with PreconditionFailure violations and an optional machine-readable reason. */
export function failedPrecondition(
  message: string,
  violations: PreconditionViolation[] = [],
  reason?: string,
  domain?: string,
): ServiceError {
  const pf = create(PreconditionFailureSchema, { violations });
  const details = [anyPack(PreconditionFailureSchema, pf)];
  if (reason) details.push(info(reason, {}, domain));
  return new ServiceError(Code.FAILED_PRECONDITION, message, details);
}

/** ABORTED for optimistic-concurrency conflicts (stale etag): the caller should re-read and retry. */
export function aborted(message: string, reason = "ETAG_MISMATCH", domain?: string): ServiceError {
  return new ServiceError(Code.ABORTED, message, [info(reason, {}, domain)]);
}

/** PERMISSION_DENIED with the reason (e.g. "ROLE_REQUIRED") and what was required. */
export function permissionDenied(
  message: string,
  reason = "PERMISSION_DENIED",
  metadata: Record<string, string> = {},
) {
  return new ServiceError(Code.PERMISSION_DENIED, message, [info(reason, metadata)]);
}

/** UNAUTHENTICATED: no or bad credentials. */
export function unauthenticated(message = "authentication required"): ServiceError {
  return new ServiceError(Code.UNAUTHENTICATED, message, [info("UNAUTHENTICATED")]);
}

/**
 * RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo, so clients know what ran out and when
 * to come back.
 */
export function resourceExhausted(
  message: string,
  opts: { subject: string; description: string; retryAfterMs?: number },
): ServiceError {
  const details = [
    anyPack(
      QuotaFailureSchema,
      create(QuotaFailureSchema, { violations: [{ subject: opts.subject, description: opts.description }] }),
    ),
  ];
  if (opts.retryAfterMs !== undefined) details.push(retryInfo(opts.retryAfterMs));
  return new ServiceError(Code.RESOURCE_EXHAUSTED, message, details);
}

/** UNAVAILABLE, optionally with RetryInfo. */
export function unavailable(message: string, retryAfterMs?: number): ServiceError {
  return new ServiceError(
    Code.UNAVAILABLE,
    message,
    retryAfterMs === undefined ? [] : [retryInfo(retryAfterMs)],
  );
}

function retryInfo(ms: number): Any {
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return anyPack(
    RetryInfoSchema,
    create(RetryInfoSchema, { retryDelay: { seconds: BigInt(seconds), nanos } }),
  );
}

/** The server-suggested retry delay of an error, in milliseconds, if any. */
export function retryDelayMs(err: ServiceError): number | undefined {
  const ri = err.findDetail(RetryInfoSchema);
  if (!ri?.retryDelay) return undefined;
  return Number(ri.retryDelay.seconds) * 1000 + Math.round(ri.retryDelay.nanos / 1e6);
}

/** Trailing metadata carrying the rich status, for grpc-js to send with the status. */
export function statusMetadata(err: ServiceError): Metadata {
  const md = new Metadata();
  md.set(STATUS_DETAILS_KEY, Buffer.from(err.toStatusBytes()));
  return md;
}
