import { randomUUID } from "node:crypto";
import type { Message } from "@bufbuild/protobuf";
import { ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Principal } from "../../../mesh/context.js";
import { Code, resourceExhausted, ServiceError } from "../../../mesh/errors.js";
import { PRINCIPAL_HEADER, PrincipalSigner } from "../../../mesh/principal-token.js";
import { extractContext, injectContext, tracer } from "../../../mesh/tracing.js";
import type { PublicMethod } from "../routes/route-table.js";
import type { Credentials, GatewaySecurity, RateLimitDecision } from "./types.js";

/** The request ids we accept from clients; anything else is replaced by a generated one. */
export const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** What a front door read from the inbound call before anything else. */
export interface Inbound {
  requestId?: string | undefined;
  correlationId?: string | undefined;
  traceparent?: string | undefined;
  tracestate?: string | undefined;
}

/** One call's way through the pipeline. */
export interface CallState {
  readonly path: string;
  readonly requestId: string;
  /** Kept only when the client sent a valid one; otherwise upstreams use the request id. */
  readonly correlationId: string | undefined;
  /** Headers (gRPC: initial metadata) every response carries: request id, rate-limit state. */
  readonly responseHeaders: Record<string, string>;
  /** Set by admit(). */
  principal: Principal | undefined;
  readonly span: Span;
  readonly started: number;
}

/** Options of the pipeline. */
export interface PipelineOptions {
  security: GatewaySecurity;
  meshSecret: string;
  principalTtlMs: number;
  /** Records one finished call (path, gRPC code name, seconds). */
  observe?: (path: string, code: string, seconds: number) => void;
}

/**
 * The one place both front doors go through, in this order: request id → authenticate → rate
 * limit → authorize → forward with the signed principal. Keeping the order in one class means
 * REST and gRPC cannot drift apart (e.g. a check added to one door only).
 */
export class Pipeline {
  private readonly signer: PrincipalSigner;

  constructor(private readonly opts: PipelineOptions) {
    this.signer = new PrincipalSigner({ secret: opts.meshSecret, ttlMs: opts.principalTtlMs });
  }

  /** Accepts the client's request id if well-formed (else generates one) and opens the span. */
  begin(path: string, inbound: Inbound): CallState {
    const requestId = valid(inbound.requestId) ?? randomUUID();
    const carrier: Record<string, string> = {};
    if (inbound.traceparent) carrier.traceparent = inbound.traceparent;
    if (inbound.tracestate) carrier.tracestate = inbound.tracestate;
    const span = tracer().startSpan(
      path,
      { kind: SpanKind.SERVER, attributes: { "rpc.method": path, "codex.request_id": requestId } },
      extractContext(carrier),
    );
    return {
      path,
      requestId,
      correlationId: valid(inbound.correlationId),
      responseHeaders: { "x-request-id": requestId },
      principal: undefined,
      span,
      started: performance.now(),
    };
  }

  /**
   * Authenticates, rate-limits and authorizes the call. Throws ServiceError (UNAUTHENTICATED,
   * RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo, PERMISSION_DENIED); rate-limit headers
   * are in `state.responseHeaders` either way.
   */
  async admit(
    state: CallState,
    route: PublicMethod,
    creds: Credentials,
    request: Message | undefined,
  ): Promise<void> {
    const { authenticator, rateLimiter, authorizer } = this.opts.security;
    const principal = await authenticator.authenticate(creds);
    const clientKey = `${principal.type}:${principal.id}`;
    const decision = await rateLimiter.take(clientKey, route.routeClass);
    setRateLimitHeaders(state.responseHeaders, decision);
    if (!decision.allowed) {
      throw resourceExhausted(`rate limit exceeded for ${route.routeClass} calls; retry later`, {
        subject: `client:${clientKey}`,
        description: `${route.routeClass} limit of ${decision.limit} reached`,
        retryAfterMs: decision.retryAfterMs,
      });
    }
    await authorizer.authorize(principal, route, request);
    state.principal = principal;
    state.span.setAttribute("enduser.id", clientKey);
  }

  /** Metadata the gateway adds to the forwarded call: ids, trace context, signed principal. */
  upstreamHeaders(state: CallState): Record<string, string> {
    const out: Record<string, string> = {
      "x-request-id": state.requestId,
      ...injectContext(trace.setSpan(ROOT_CONTEXT, state.span)),
    };
    if (state.correlationId) out["x-correlation-id"] = state.correlationId;
    if (state.principal) {
      out[PRINCIPAL_HEADER] = this.signer.sign(state.principal);
    }
    return out;
  }

  /** Ends the call's span and records its outcome. */
  end(state: CallState, code: Code): void {
    const name = Code[code] ?? "UNKNOWN";
    state.span.setAttribute("rpc.grpc.status_code", code);
    if (code !== Code.OK) state.span.setStatus({ code: SpanStatusCode.ERROR, message: name });
    state.span.end();
    this.opts.observe?.(state.path, name, (performance.now() - state.started) / 1000);
  }
}

function valid(id: string | undefined): string | undefined {
  return id !== undefined && REQUEST_ID.test(id) ? id : undefined;
}

function setRateLimitHeaders(headers: Record<string, string>, d: RateLimitDecision): void {
  headers["x-ratelimit-limit"] = String(d.limit);
  headers["x-ratelimit-remaining"] = String(Math.max(0, d.remaining));
  if (!d.allowed) headers["retry-after"] = String(Math.max(1, Math.ceil(d.retryAfterMs / 1000)));
}

/** The gRPC code of anything a call ended with. */
export function codeOf(err: unknown): Code {
  return err === undefined ? Code.OK : ServiceError.from(err).code;
}
