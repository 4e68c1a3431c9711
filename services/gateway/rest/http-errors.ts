import { type JsonObject, type JsonValue, type Registry, toJson } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { Code, ServiceError } from "../../../mesh/errors.js";

/** HTTP status of a gRPC code, as grpc-gateway maps it (runtime.HTTPStatusFromCode). */
const HTTP_STATUS: Readonly<Record<number, number>> = {
  [Code.OK]: 200,
  [Code.CANCELLED]: 499,
  [Code.UNKNOWN]: 500,
  [Code.INVALID_ARGUMENT]: 400,
  [Code.DEADLINE_EXCEEDED]: 504,
  [Code.NOT_FOUND]: 404,
  [Code.ALREADY_EXISTS]: 409,
  [Code.PERMISSION_DENIED]: 403,
  [Code.UNAUTHENTICATED]: 401,
  [Code.RESOURCE_EXHAUSTED]: 429,
  [Code.FAILED_PRECONDITION]: 400,
  [Code.ABORTED]: 409,
  [Code.OUT_OF_RANGE]: 400,
  [Code.UNIMPLEMENTED]: 501,
  [Code.INTERNAL]: 500,
  [Code.UNAVAILABLE]: 503,
  [Code.DATA_LOSS]: 500,
};

export function httpStatusOf(code: Code): number {
  return HTTP_STATUS[code] ?? 500;
}

/**
 * An error whose HTTP status is not the one its gRPC code maps to: 413 (body too large),
 * 404/405 (no route), which grpc-gateway also answers outside the code mapping.
 */
export class HttpError extends ServiceError {
  constructor(
    readonly httpStatus: number,
    code: Code,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(code, message);
  }
}

/** The error body: `{code, message, details}`, details as JSON with `@type`. */
export function errorJson(err: ServiceError, registry: Registry): JsonObject {
  const details: JsonValue[] = err.details.map((any) => {
    try {
      return toJson(AnySchema, any, { registry });
    } catch {
      // A detail type we do not know still tells the client something: its type and bytes.
      return { "@type": any.typeUrl, value: Buffer.from(any.value).toString("base64") };
    }
  });
  return { code: err.code, message: err.message, details };
}

/** Status and body for anything a REST call failed with. */
export function errorResponse(err: unknown, registry: Registry): { status: number; body: JsonObject } {
  const e = ServiceError.from(err);
  const status = e instanceof HttpError ? e.httpStatus : httpStatusOf(e.code);
  return { status, body: errorJson(e, registry) };
}
