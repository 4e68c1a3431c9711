import {
  type ClientHttp2Stream,
  constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import { Code, invalidArgument, ServiceError, statusMetadata, unavailable } from "../../../mesh/errors.js";
import type { Logger } from "../../../mesh/logging.js";
import { firstValue, forwardMetadata, grpcCredentials, responseMetadata } from "../pipeline/metadata.js";
import type { CallState, Pipeline } from "../pipeline/pipeline.js";
import type { PublicMethod } from "../routes/route-table.js";
import type { UpstreamSessions } from "../routes/upstream-sessions.js";
import { plainPayload, type SingleMessage } from "./frames.js";
import {
  codeOfHttpStatus,
  encodeGrpcMessage,
  formatTimeout,
  parseTimeout,
  statusOfReset,
} from "./grpc-wire.js";
import { relayRequests, relayResponses } from "./relay.js";

/** What every proxied call needs from the gateway. */
export interface ProxyContext {
  readonly pipeline: Pipeline;
  readonly upstreams: UpstreamSessions;
  readonly logger: Logger;
  readonly maxMessageBytes: number;
}

/** Opens the upstream stream of a call, given its request headers. */
export type UpstreamOpener = (headers: OutgoingHttpHeaders) => ClientHttp2Stream;

const { HTTP2_HEADER_STATUS, HTTP2_HEADER_CONTENT_TYPE, NGHTTP2_CANCEL } = constants;
/** Transport headers the gateway passes through itself: the messages are forwarded still encoded. */
const ENCODING_HEADERS = ["grpc-encoding", "grpc-accept-encoding"] as const;

/**
 * One call through the gRPC front door, from the client's HTTP/2 stream to the upstream's: the
 * pipeline state, the deadline, the response headers sent once, and exactly one final status —
 * the upstream's relayed unchanged, or the gateway's own (with google.rpc details) when the
 * gateway refuses or the upstream cannot be reached.
 *
 * Calls of the front door's own services (health, reflection) go through here without a
 * pipeline (`pipeline: false`): no authentication, no metric, nothing added to the metadata.
 */
export class ProxiedCall {
  readonly state: CallState | undefined;
  /** The client's metadata, read as grpc-js reads it (so the forwarding rules see the same thing). */
  readonly metadata: Metadata;
  private readonly deadlineAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private up: ClientHttp2Stream | undefined;
  private headersSent = false;
  private finished = false;
  private ended = false;

  constructor(
    readonly down: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    readonly path: string,
    private readonly ctx: ProxyContext,
    opts: { pipeline: boolean },
  ) {
    this.metadata = Metadata.fromHttp2Headers(headers);
    if (opts.pipeline) {
      this.state = ctx.pipeline.begin(path, {
        requestId: firstValue(this.metadata, "x-request-id"),
        correlationId: firstValue(this.metadata, "x-correlation-id"),
        traceparent: firstValue(this.metadata, "traceparent"),
        tracestate: firstValue(this.metadata, "tracestate"),
      });
    }
    const timeout = parseTimeout(single(headers["grpc-timeout"]));
    if (timeout !== undefined) {
      this.deadlineAt = Date.now() + timeout;
      this.timer = setTimeout(() => this.expire(), timeout);
    }
    down.once("close", () => this.downClosed());
  }

  /** True once the client went away or the call has its status. */
  get done(): boolean {
    return this.finished || this.down.destroyed;
  }

  /**
   * Runs the pipeline. Unary and server-streaming requests are decoded — a copy, for the
   * authorizer only; the original bytes are what is forwarded.
   */
  async admit(route: PublicMethod, request: SingleMessage | undefined): Promise<void> {
    let decoded: ReturnType<typeof fromBinary> | undefined;
    if (request !== undefined) {
      const bytes = plainPayload(request, single(this.headers["grpc-encoding"]), this.ctx.maxMessageBytes);
      try {
        decoded = fromBinary(route.method.input, bytes);
      } catch (err) {
        throw invalidArgument(`malformed ${route.method.input.typeName}`, [
          { field: "", description: err instanceof Error ? err.message : String(err) },
        ]);
      }
    }
    await this.ctx.pipeline.admit(this.state!, route, grpcCredentials(this.metadata), decoded);
  }

  /**
   * Opens the upstream stream and relays both ways. `request` is the one request message of a
   * unary or server-streaming call (already read); without it the client's messages stream on.
   */
  forward(open: UpstreamOpener, request: Buffer | undefined): void {
    if (this.done) return;
    if (this.deadlineAt !== undefined && this.deadlineAt <= Date.now()) {
      this.expire();
      return;
    }
    let up: ClientHttp2Stream;
    try {
      up = open(this.upstreamHeaders());
    } catch (err) {
      this.fail(err);
      return;
    }
    this.up = up;
    let trailers: IncomingHttpHeaders | undefined;
    let error: (Error & { code?: string }) | undefined;
    up.once("response", (headers, flags) => {
      const status = Number(headers[HTTP2_HEADER_STATUS]);
      if (flags & constants.NGHTTP2_FLAG_END_STREAM || headers["grpc-status"] !== undefined) {
        trailers = headers; // trailers-only: the status came in the headers frame
      } else if (status !== 200) {
        up.close(NGHTTP2_CANCEL);
        this.finish(codeOfHttpStatus(status), `upstream answered HTTP ${status}`, {});
      } else this.sendHeaders(headers);
    });
    up.once("trailers", (headers) => {
      trailers = headers;
    });
    relayResponses(up, this);
    up.once("end", () => {
      if (trailers) this.relayStatus(trailers);
    });
    up.on("error", (err) => {
      error = err;
    });
    up.once("close", () => {
      if (this.finished) return;
      if (trailers) return this.relayStatus(trailers);
      const rst = up.rstCode ?? constants.NGHTTP2_NO_ERROR;
      if ((error && error.code !== "ERR_HTTP2_STREAM_ERROR") || up.session?.destroyed) {
        const reason = error?.message ?? "connection closed";
        return this.fail(unavailable(`upstream ${this.path.split("/")[1]} unavailable: ${reason}`));
      }
      if (rst !== constants.NGHTTP2_NO_ERROR) {
        const s = statusOfReset(rst);
        return this.finish(s.code, s.message, this.gatewayTrailers(s.code));
      }
      this.finish(
        Code.INTERNAL,
        "upstream ended the call without a status",
        this.gatewayTrailers(Code.INTERNAL),
      );
    });
    if (request !== undefined) up.end(request);
    else relayRequests(this.down, up, this, this.ctx.maxMessageBytes);
  }

  /** Writes one response chunk; false means the client's window is full (wait for 'drain'). */
  write(chunk: Buffer): boolean {
    return this.down.write(chunk);
  }

  /** Sends response headers once: the upstream's (if any) merged with the gateway's. */
  sendHeaders(upstream?: IncomingHttpHeaders): void {
    if (this.headersSent || this.down.destroyed || this.down.headersSent) return;
    this.headersSent = true;
    const md = responseMetadata(
      this.state?.responseHeaders ?? {},
      upstream ? Metadata.fromHttp2Headers(upstream) : undefined,
    );
    const out: OutgoingHttpHeaders = md.toHttp2Headers();
    out[HTTP2_HEADER_STATUS] = 200;
    out[HTTP2_HEADER_CONTENT_TYPE] = upstream?.[HTTP2_HEADER_CONTENT_TYPE] ?? "application/grpc";
    for (const h of ENCODING_HEADERS) if (upstream?.[h] !== undefined) out[h] = upstream[h];
    this.down.respond(out, { waitForTrailers: true });
  }

  /** A gateway-side failure (pipeline refusal, no upstream) as a status with google.rpc details. */
  fail(err: unknown): void {
    const e = ServiceError.from(err);
    if (e.code === Code.INTERNAL) {
      this.ctx.logger.error({ err: e.cause ?? e, method: this.path }, "gateway failure");
    }
    const trailers = statusMetadata(e);
    for (const [k, v] of Object.entries(this.state?.responseHeaders ?? {})) trailers.set(k, v);
    this.finish(e.code, e.message, trailers.toHttp2Headers());
    this.up?.close(NGHTTP2_CANCEL);
  }

  /** Ends the pipeline's span and records the outcome, once. */
  end(code: Code): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    if (this.state) this.ctx.pipeline.end(this.state, code);
  }

  /** An upstream status for the client: code, message and trailers (rich details) unchanged. */
  private relayStatus(upstream: IncomingHttpHeaders): void {
    const raw = single(upstream["grpc-status"]);
    const code = raw === undefined || !/^\d+$/.test(raw) ? Code.UNKNOWN : (Number(raw) as Code);
    const md = Metadata.fromHttp2Headers(upstream);
    md.remove("grpc-status");
    md.remove("grpc-message");
    const trailers: OutgoingHttpHeaders = responseMetadata(
      code === Code.OK ? {} : (this.state?.responseHeaders ?? {}),
      md,
    ).toHttp2Headers();
    const message = single(upstream["grpc-message"]);
    this.finish(code, undefined, trailers, raw ?? String(code), message);
  }

  /** Trailers of a status the gateway states without details: the gateway's headers only. */
  private gatewayTrailers(code: Code): OutgoingHttpHeaders {
    return code === Code.OK ? {} : { ...this.state?.responseHeaders };
  }

  /**
   * Ends the call with a status, once: headers first if none went out (so clients always find the
   * request id and rate-limit headers in the response headers), then the messages already
   * queued, then the trailers. `message` is encoded here; `rawMessage` is relayed as received.
   */
  private finish(
    code: Code,
    message: string | undefined,
    trailers: OutgoingHttpHeaders,
    rawStatus = String(code),
    rawMessage?: string,
  ): void {
    if (this.finished) return;
    this.finished = true;
    this.end(code);
    const down = this.down;
    if (down.destroyed || down.closed) return;
    trailers["grpc-status"] = rawStatus;
    const text = rawMessage ?? (message === undefined ? undefined : encodeGrpcMessage(message));
    if (text !== undefined && text !== "") trailers["grpc-message"] = text;
    this.sendHeaders();
    down.once("wantTrailers", () => {
      if (!down.destroyed) down.sendTrailers(trailers);
    });
    down.end();
    // Whatever the client still sends is no longer read by anyone: let it drain away.
    down.resume();
  }

  private expire(): void {
    this.up?.close(NGHTTP2_CANCEL);
    this.finish(Code.DEADLINE_EXCEEDED, "Deadline exceeded", this.gatewayTrailers(Code.DEADLINE_EXCEEDED));
  }

  /** The client reset or closed its stream: cancel upstream unless the call had already ended. */
  private downClosed(): void {
    clearTimeout(this.timer);
    if (this.finished) return;
    this.finished = true;
    this.up?.close(NGHTTP2_CANCEL);
    this.end(Code.CANCELLED);
  }

  /** Request headers of the upstream stream: the forwarded metadata plus gRPC's transport headers. */
  private upstreamHeaders(): OutgoingHttpHeaders {
    const gateway = this.state ? this.ctx.pipeline.upstreamHeaders(this.state) : {};
    const out: OutgoingHttpHeaders = forwardMetadata(this.metadata, gateway).toHttp2Headers();
    out[constants.HTTP2_HEADER_METHOD] = "POST";
    out[constants.HTTP2_HEADER_PATH] = this.path;
    out[constants.HTTP2_HEADER_SCHEME] = "http";
    out[HTTP2_HEADER_CONTENT_TYPE] = this.headers[HTTP2_HEADER_CONTENT_TYPE];
    out.te = "trailers";
    for (const h of ENCODING_HEADERS) if (this.headers[h] !== undefined) out[h] = this.headers[h];
    if (this.deadlineAt !== undefined) out["grpc-timeout"] = formatTimeout(this.deadlineAt - Date.now());
    return out;
  }
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
