import type { IncomingMessage, ServerResponse } from "node:http";
import { fromBinary, type JsonValue, type Registry, toBinary } from "@bufbuild/protobuf";
import type { CallOptions, Metadata, StatusObject } from "@grpc/grpc-js";
import { Code, invalidArgument, ServiceError } from "../../../mesh/errors.js";
import type { Logger } from "../../../mesh/logging.js";
import { callServerStreamH2 } from "../grpc-proxy/h2-stream.js";
import { callUnaryH2 } from "../grpc-proxy/h2-unary.js";
import { credentialsOf, restMetadata } from "../pipeline/metadata.js";
import type { CallState, Pipeline } from "../pipeline/pipeline.js";
import type { Credentials } from "../pipeline/types.js";
import type { HttpBinding, PublicMethod } from "../routes/route-table.js";
import type { UpstreamSessions } from "../routes/upstream-sessions.js";
import { readBody } from "./body.js";
import { errorJson, errorResponse, HttpError } from "./http-errors.js";
import { relayStream, streamFormatOf } from "./response-stream.js";
import type { RestRouter } from "./router.js";
import { requestFromHttp, responseToJson } from "./transcode.js";

export interface RestBridgeOptions {
  readonly router: RestRouter;
  readonly pipeline: Pipeline;
  /** Calls go over the same HTTP/2 sessions as the gRPC door (less CPU than grpc-js). */
  readonly sessions: UpstreamSessions;
  /** Largest response message a server stream may send (GRPC_MAX_MESSAGE_BYTES). */
  readonly maxMessageBytes: number;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly maxBodyBytes: number;
  readonly unaryTimeoutMs: number;
}

/**
 * The REST front door's request handler: route → pipeline (same as gRPC) → build the request
 * message → call the upstream over gRPC → JSON (or an NDJSON/SSE stream) back.
 */
export class RestBridge {
  constructor(private readonly o: RestBridgeOptions) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://gateway");
    const match = this.o.router.match(req.method ?? "GET", url.pathname);
    const state = this.o.pipeline.begin(match.kind === "found" ? match.route.path : "rest/unrouted", {
      requestId: header(req, "x-request-id"),
      correlationId: header(req, "x-correlation-id"),
      traceparent: header(req, "traceparent"),
      tracestate: header(req, "tracestate"),
    });
    try {
      if (match.kind === "not-found") {
        throw new HttpError(404, Code.NOT_FOUND, `no route for ${req.method} ${url.pathname}`);
      }
      if (match.kind === "method-not-allowed") {
        throw new HttpError(405, Code.UNIMPLEMENTED, `${req.method} is not allowed on ${url.pathname}`, {
          allow: match.allow.join(", "),
        });
      }
      const { route, binding, params } = match;
      const raw = await readBody(req, this.o.maxBodyBytes);
      const request = requestFromHttp(
        route.method.input,
        binding,
        params,
        url.searchParams,
        parseJson(raw),
        this.o.registry,
      );
      await this.o.pipeline.admit(state, route, credentials(req), request);
      const bytes = Buffer.from(toBinary(route.method.input, request));
      const md = restMetadata(req.headers, this.o.pipeline.upstreamHeaders(state));
      if (route.method.methodKind === "server_streaming") {
        const up = callServerStreamH2(
          this.o.sessions,
          route.upstream,
          route.path,
          bytes,
          md,
          epochMs(deadline(req).deadline),
          this.o.maxMessageBytes,
        );
        relayStream(up, res, {
          format: streamFormatOf(header(req, "accept")),
          headers: state.responseHeaders,
          toJson: (buf) =>
            responseToJson(
              route.method.output,
              fromBinary(route.method.output, buf),
              binding,
              this.o.registry,
            ),
          errorJson: (err) => errorJson(err, this.o.registry),
          writeError: (err) => this.writeError(res, state, err),
          onEnd: (code) => this.o.pipeline.end(state, code),
        });
        return;
      }
      const out = await this.unary(route, binding, bytes, md, req, res);
      this.o.pipeline.end(state, Code.OK);
      writeJson(res, 200, state.responseHeaders, out);
    } catch (err) {
      this.o.pipeline.end(state, ServiceError.from(err).code);
      this.writeError(res, state, err);
    }
  }

  private unary(
    route: PublicMethod,
    binding: HttpBinding,
    bytes: Buffer,
    md: Metadata,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<JsonValue> {
    return new Promise((resolve, reject) => {
      const { deadline: at } = deadline(req, this.o.unaryTimeoutMs);
      const onStatus = (status: StatusObject, response: Buffer | undefined) => {
        if (status.code !== Code.OK)
          return reject(ServiceError.from(Object.assign(new Error(status.details), status)));
        try {
          const msg = fromBinary(route.method.output, response ?? Buffer.alloc(0));
          resolve(responseToJson(route.method.output, msg, binding, this.o.registry));
        } catch (err) {
          reject(err);
        }
      };
      const call = callUnaryH2(this.o.sessions, route.upstream, route.path, bytes, md, epochMs(at), onStatus);
      res.on("close", () => {
        if (!res.writableFinished) call.cancel();
      });
    });
  }

  private writeError(res: ServerResponse, state: CallState, err: unknown): void {
    const e = ServiceError.from(err);
    if (e.code === Code.INTERNAL)
      this.o.logger.error({ err: e.cause ?? e, method: state.path }, "REST call failed");
    const { status, body } = errorResponse(e, this.o.registry);
    const extra = e instanceof HttpError ? e.headers : {};
    if (res.headersSent) return void res.end();
    writeJson(res, status, { ...state.responseHeaders, ...extra }, body);
  }
}

function writeJson(
  res: ServerResponse,
  status: number,
  headers: Readonly<Record<string, string>>,
  body: JsonValue,
) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function credentials(req: IncomingMessage): Credentials {
  return credentialsOf(header(req, "authorization"), header(req, "x-api-key"));
}

function parseJson(raw: Buffer): JsonValue | undefined {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString("utf8")) as JsonValue;
  } catch (err) {
    throw invalidArgument("request body is not valid JSON", [
      { field: "", description: err instanceof Error ? err.message : String(err), reason: "MALFORMED_JSON" },
    ]);
  }
}

const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000001 };

/** The call's deadline: the client's `Grpc-Timeout` (grpc-gateway honours it) capped by `capMs`. */
/** A grpc-js deadline (Date or epoch ms) as epoch ms. */
function epochMs(at: CallOptions["deadline"]): number | undefined {
  return at === undefined ? undefined : at instanceof Date ? at.getTime() : at;
}

function deadline(req: IncomingMessage, capMs?: number): CallOptions {
  const m = GRPC_TIMEOUT.exec(header(req, "grpc-timeout") ?? "");
  const asked = m ? Number(m[1]) * UNIT_MS[m[2]!]! : undefined;
  const ms = asked === undefined ? capMs : capMs === undefined ? asked : Math.min(asked, capMs);
  return ms === undefined ? {} : { deadline: Date.now() + ms };
}
