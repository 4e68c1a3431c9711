import { fromBinary } from "@bufbuild/protobuf";
import type { CallOptions, Deadline, Metadata, StatusObject } from "@grpc/grpc-js";
import { Code, invalidArgument, ServiceError, statusMetadata } from "../../../mesh/errors.js";
import type { Logger } from "../../../mesh/logging.js";
import { firstValue, forwardMetadata, grpcCredentials, responseMetadata } from "../pipeline/metadata.js";
import type { CallState, Pipeline } from "../pipeline/pipeline.js";
import type { PublicMethod } from "../routes/route-table.js";
import type { UpstreamPool } from "../routes/upstreams.js";

/** What every proxied call needs from the gateway. */
export interface ProxyContext {
  readonly pipeline: Pipeline;
  readonly upstreams: UpstreamPool;
  readonly logger: Logger;
}

/** The parts of any grpc-js server call the proxy uses. */
export interface InboundCall {
  readonly metadata: Metadata;
  readonly cancelled: boolean;
  getDeadline(): Deadline;
  sendMetadata(md: Metadata): void;
  emit(event: "error", status: Partial<StatusObject>): boolean;
}

/**
 * The state one proxied call shares across the four call kinds: its pipeline state, whether
 * response headers went out, and the translation of any outcome into a gRPC status.
 */
export class ProxiedCall {
  readonly state: CallState;
  private headersSent = false;
  private ended = false;

  constructor(
    private readonly call: InboundCall,
    readonly route: { readonly path: string },
    private readonly ctx: ProxyContext,
  ) {
    const md = call.metadata;
    this.state = ctx.pipeline.begin(route.path, {
      requestId: firstValue(md, "x-request-id"),
      correlationId: firstValue(md, "x-correlation-id"),
      traceparent: firstValue(md, "traceparent"),
      tracestate: firstValue(md, "tracestate"),
    });
  }

  /**
   * Runs the pipeline. Unary and server-streaming requests are decoded — a copy, for the
   * authorizer only; the original bytes are what is forwarded.
   */
  async admit(route: PublicMethod, request: Buffer | undefined): Promise<void> {
    let decoded: ReturnType<typeof fromBinary> | undefined;
    if (request !== undefined) {
      try {
        decoded = fromBinary(route.method.input, request);
      } catch (err) {
        throw invalidArgument(`malformed ${route.method.input.typeName}`, [
          { field: "", description: err instanceof Error ? err.message : String(err) },
        ]);
      }
    }
    await this.ctx.pipeline.admit(this.state, route, grpcCredentials(this.call.metadata), decoded);
  }

  /** Metadata of the upstream call. */
  upstreamMetadata(): Metadata {
    return forwardMetadata(this.call.metadata, this.ctx.pipeline.upstreamHeaders(this.state));
  }

  /** The client's deadline, propagated as is (none when the client set none). */
  upstreamOptions(): CallOptions {
    const d = this.call.getDeadline();
    const ms = d instanceof Date ? d.getTime() : d;
    return Number.isFinite(ms) ? { deadline: d } : {};
  }

  /** Sends response headers once: the upstream's (if any) merged with the gateway's. */
  sendHeaders(upstream?: Metadata): void {
    if (this.headersSent || this.call.cancelled) return;
    this.headersSent = true;
    this.call.sendMetadata(responseMetadata(this.state.responseHeaders, upstream));
  }

  /** An upstream status for the client: code, message and trailers (rich details) unchanged. */
  relay(status: StatusObject): Partial<StatusObject> {
    this.sendHeaders();
    this.end(status.code);
    const trailers = responseMetadata(
      status.code === Code.OK ? {} : this.state.responseHeaders,
      status.metadata,
    );
    return { code: status.code, details: status.details, metadata: trailers };
  }

  /** A gateway-side failure (pipeline refusal, no upstream) as a status with google.rpc details. */
  fail(err: unknown): Partial<StatusObject> {
    const e = ServiceError.from(err);
    if (e.code === Code.INTERNAL) {
      this.ctx.logger.error({ err: e.cause ?? e, method: this.route.path }, "gateway failure");
    }
    this.sendHeaders();
    this.end(e.code);
    const trailers = statusMetadata(e);
    for (const [k, v] of Object.entries(this.state.responseHeaders)) trailers.set(k, v);
    return { code: e.code, details: e.message, metadata: trailers };
  }

  /** Ends the pipeline's span once. */
  end(code: Code): void {
    if (this.ended) return;
    this.ended = true;
    this.ctx.pipeline.end(this.state, code);
  }
}
