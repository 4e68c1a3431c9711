/**
 * Envoy's external authorization (ext_authz) server: the same pipeline as the gateway's own front
 * doors (request id → authenticate → rate limit → authorize → signed principal), answered to
 * Envoy instead of applied to a proxied call.
 *
 * Why: behind the production Envoy front door (deploy/envoy/envoy.yaml) Envoy verifies JWTs and
 * transcodes REST, but cannot mint the HMAC-signed `x-codex-principal` our services trust, look
 * up API keys, roles or per-client limits. Its ext_authz filter asks this server once per request
 * (after transcoding, so always with the gRPC path and the gRPC-framed request body) and gets
 * back the headers to set upstream, or the refusal to send the client.
 *
 * The answers:
 * - OK: `x-codex-principal`, `x-request-id` and `traceparent` set on the upstream request; the
 *   caller's credentials removed from it (services never see tokens or keys); `x-request-id` and
 *   the rate-limit headers added to the client's response.
 * - refused: `status` carries the gRPC code gRPC clients get; `denied_response` the HTTP status
 *   (grpc-gateway's mapping), the same headers and, for REST callers (the transcoder left
 *   `x-envoy-original-path`), the `{code, message, details}` body the gateway's REST door sends.
 */
import { create, fromBinary, type Message, type Registry } from "@bufbuild/protobuf";
import {
  type AttributeContext_HttpRequest,
  type Authorization,
  type CheckResponse,
  CheckResponseSchema,
  type HeaderValueOption,
  HeaderValueOptionSchema,
} from "../../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { Code, failedPrecondition, invalidArgument, ServiceError } from "../../../mesh/errors.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { plainPayload, singleMessage } from "../grpc-proxy/frames.js";
import { credentialsOf } from "../pipeline/metadata.js";
import { type CallState, codeOf, type Pipeline } from "../pipeline/pipeline.js";
import { errorJson, httpStatusOf } from "../rest/http-errors.js";
import type { PublicMethod, RouteTable } from "../routes/route-table.js";

/** envoy.config.core.v3.HeaderValueOption.HeaderAppendAction OVERWRITE_IF_EXISTS_OR_ADD. */
const OVERWRITE = 2;

/** Request headers never passed upstream: credentials (services trust the principal instead). */
export const CREDENTIAL_HEADERS = ["authorization", "x-api-key", "cookie", "proxy-authorization"];

export interface ExtAuthzDeps {
  readonly routes: RouteTable;
  readonly pipeline: Pipeline;
  /** Largest request message decoded for the authorizer (GRPC_MAX_MESSAGE_BYTES). */
  readonly maxMessageBytes: number;
  /** For error details in REST bodies. */
  readonly registry: Registry;
}

/** The `envoy.service.auth.v3.Authorization` implementation registered on the gateway's server. */
export function extAuthzService(deps: ExtAuthzDeps): ServiceImpl<typeof Authorization> {
  return {
    async check(req) {
      const http = req.attributes?.request?.http;
      if (!http) throw invalidArgument("attributes.request.http is required");
      return check(deps, http);
    },
  };
}

async function check(deps: ExtAuthzDeps, http: AttributeContext_HttpRequest): Promise<CheckResponse> {
  const headers = http.headers;
  const path = http.path.split("?", 1)[0] ?? "";
  const state = deps.pipeline.begin(path, {
    requestId: headers["x-request-id"],
    correlationId: headers["x-correlation-id"],
    traceparent: headers.traceparent,
    tracestate: headers.tracestate,
  });
  let failure: unknown;
  try {
    const route = deps.routes.public.get(path);
    if (!route) {
      throw new ServiceError(
        Code.UNIMPLEMENTED,
        deps.routes.internal.has(path)
          ? `${path} is internal and not served through the gateway`
          : `unknown method ${path}`,
      );
    }
    const request = decodeRequest(deps, route, http);
    await deps.pipeline.admit(
      state,
      route,
      credentialsOf(headers.authorization, headers["x-api-key"]),
      request,
    );
    return allowed(deps.pipeline, state);
  } catch (err) {
    failure = err;
    return denied(deps.registry, state, ServiceError.from(err), "x-envoy-original-path" in headers);
  } finally {
    deps.pipeline.end(state, codeOf(failure));
  }
}

/**
 * The request of a unary or server-streaming call, decoded for the authorizer (its project).
 * Envoy buffers those bodies (with_request_body); client and bidi streams are sent without one
 * (the route disables buffering) and are checked, as at the gateway's own door, without a request.
 */
function decodeRequest(
  deps: ExtAuthzDeps,
  route: PublicMethod,
  http: AttributeContext_HttpRequest,
): Message | undefined {
  const kind = route.method.methodKind;
  if (kind === "client_streaming" || kind === "bidi_streaming") return undefined;
  if (http.rawBody.length === 0) {
    // Fail closed: without the body the project cannot be checked.
    throw failedPrecondition(
      "the front door sent no request body to authorize; ext_authz must buffer unary bodies",
      [],
      "EXT_AUTHZ_BODY_MISSING",
    );
  }
  const msg = singleMessage(Buffer.from(http.rawBody), route.path);
  const bytes = plainPayload(msg, http.headers["grpc-encoding"], deps.maxMessageBytes);
  try {
    return fromBinary(route.method.input, bytes);
  } catch (err) {
    throw invalidArgument(`malformed ${route.method.input.typeName}`, [
      { field: "", description: err instanceof Error ? err.message : String(err) },
    ]);
  }
}

function allowed(pipeline: Pipeline, state: CallState): CheckResponse {
  return create(CheckResponseSchema, {
    status: { code: Code.OK },
    httpResponse: {
      case: "okResponse",
      value: {
        headers: options(pipeline.upstreamHeaders(state)),
        headersToRemove: CREDENTIAL_HEADERS,
        responseHeadersToAdd: options(state.responseHeaders),
      },
    },
  });
}

function denied(registry: Registry, state: CallState, err: ServiceError, rest: boolean): CheckResponse {
  const headers = { ...state.responseHeaders };
  let body = err.message;
  if (rest) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(errorJson(err, registry));
  }
  return create(CheckResponseSchema, {
    status: { code: err.code, message: err.message, details: err.details },
    httpResponse: {
      case: "deniedResponse",
      value: { status: { code: httpStatusOf(err.code) }, headers: options(headers), body },
    },
  });
}

function options(headers: Record<string, string>): HeaderValueOption[] {
  return Object.entries(headers).map(([key, value]) =>
    create(HeaderValueOptionSchema, { header: { key, value }, appendAction: OVERWRITE }),
  );
}
