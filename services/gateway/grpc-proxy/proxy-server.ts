import {
  constants,
  createServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { Server as GrpcServer, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { Code, permissionDenied } from "../../../mesh/errors.js";
import { addReflection } from "../../../mesh/grpc/reflection.js";
import type { Component, StopContext } from "../../../mesh/lifecycle.js";
import type { RouteTable } from "../routes/route-table.js";
import { UpstreamSessions } from "../routes/upstream-sessions.js";
import { forwardPublic } from "./forward.js";
import { encodeGrpcMessage } from "./grpc-wire.js";
import { ProxiedCall, type ProxyContext } from "./proxied-call.js";

/** Options of the gRPC front door. */
export interface GrpcProxyOptions {
  readonly routes: RouteTable;
  readonly context: ProxyContext;
  readonly port: number;
  readonly host?: string;
}

/** Paths answered by the front door's own services rather than an upstream. */
const OWN_SERVICES = /^\/grpc\.(health\.v1\.Health|reflection\.v1(alpha)?\.ServerReflection)\//;

/**
 * The gRPC front door, on `node:http2`: each call's HTTP/2 stream is forwarded to an upstream
 * stream as bytes (headers, length-prefixed messages, trailers), so no message is decoded or
 * re-encoded on the way, and none of grpc-js's per-call machinery runs (ADR 0011, "the front
 * door on node:http2"). Public methods are forwarded through the pipeline; internal ones (no
 * `google.api.http` annotation) are answered PERMISSION_DENIED (reason INTERNAL_METHOD) without
 * reaching a service; unknown paths get UNIMPLEMENTED.
 *
 * Health and reflection (for the whole API behind the gateway) are answered unauthenticated, by
 * a small grpc-js server on a loopback port that the front door forwards those paths to. Why not
 * answer them here: Watch streams, reflection's bidi protocol and the descriptor set are what
 * grpc-health-check and @grpc/reflection already do right; they are not on the hot path, and
 * one loopback hop is cheaper than a second implementation of either.
 */
export class GrpcProxy implements Component {
  readonly health = new HealthImplementation({ "": "NOT_SERVING" });
  private readonly server: Http2Server;
  private readonly own = new GrpcServer({ "grpc.enable_channelz": 0 });
  private ownSessions: UpstreamSessions | undefined;
  private readonly sessions = new Set<Http2Session>();
  private bound: number | undefined;

  constructor(private readonly opts: GrpcProxyOptions) {
    this.health.addToServer(this.own);
    addReflection(this.own, [...opts.routes.services]);
    this.server = createServer({
      // MB; as grpc-js's server: flow control and the message limit bound memory, not this.
      maxSessionMemory: 1_000,
      settings: { initialWindowSize: 1 << 20 },
    });
    this.server.on("session", (session) => {
      this.sessions.add(session);
      session.once("close", () => this.sessions.delete(session));
      session.on("error", () => {}); // a client's broken connection is that client's problem
    });
    this.server.on("stream", (stream, headers) => this.dispatch(stream, headers));
  }

  async start(): Promise<void> {
    const ownPort = await new Promise<number>((resolve, reject) =>
      this.own.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    this.ownSessions = new UpstreamSessions(() => [`127.0.0.1:${ownPort}`]);
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.port, this.opts.host ?? "0.0.0.0", () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    this.bound = (this.server.address() as AddressInfo).port;
    this.health.setStatus("", "SERVING");
  }

  /** The bound port (after start). */
  get port(): number {
    if (this.bound === undefined) throw new Error("gRPC front door not started");
    return this.bound;
  }

  /**
   * NOT_SERVING, stop accepting connections, GOAWAY every session so calls in flight may finish
   * until the stop deadline; then reset whatever is left.
   */
  async stop(ctx?: StopContext): Promise<void> {
    this.health.setStatus("", "NOT_SERVING");
    const graceMs = Math.max(0, (ctx?.deadline ?? Date.now()) - Date.now());
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) s.close();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      timer.unref();
      closed.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    for (const s of this.sessions) s.destroy();
    await closed;
    this.ownSessions?.close();
    this.own.forceShutdown();
  }

  private dispatch(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    // Errors of one stream (a reset, a write after the client left) concern that call only.
    stream.on("error", () => {});
    const path = String(headers[constants.HTTP2_HEADER_PATH] ?? "");
    if (headers[constants.HTTP2_HEADER_METHOD] !== "POST") {
      refuseHttp(stream, 405, Code.UNIMPLEMENTED, "gRPC requests must be POST");
      return;
    }
    const contentType = String(headers[constants.HTTP2_HEADER_CONTENT_TYPE] ?? "");
    if (!contentType.startsWith("application/grpc")) {
      // As grpc-js: not a gRPC request, so an HTTP answer without a gRPC status.
      stream.respond({ [constants.HTTP2_HEADER_STATUS]: 415 }, { endStream: true });
      return;
    }
    const ctx = this.opts.context;
    const route = this.opts.routes.public.get(path);
    if (route) {
      forwardPublic(stream, headers, route, ctx);
      return;
    }
    if (this.opts.routes.internal.has(path)) {
      const call = new ProxiedCall(stream, headers, path, ctx, { pipeline: true });
      call.fail(
        permissionDenied(`${path} is internal: it is not callable through the gateway`, "INTERNAL_METHOD"),
      );
      return;
    }
    if (OWN_SERVICES.test(path) && this.ownSessions) {
      const own = this.ownSessions;
      const call = new ProxiedCall(stream, headers, path, ctx, { pipeline: false });
      call.forward((h) => own.request("gateway", h), undefined);
      return;
    }
    refuseHttp(stream, 200, Code.UNIMPLEMENTED, `The server does not implement the method ${path}`);
  }
}

/** A trailers-only answer for requests refused before any call exists. */
function refuseHttp(stream: ServerHttp2Stream, status: number, code: Code, message: string): void {
  stream.respond(
    {
      [constants.HTTP2_HEADER_STATUS]: status,
      [constants.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
      "grpc-status": String(code),
      "grpc-message": encodeGrpcMessage(message),
    },
    { endStream: true },
  );
  stream.resume();
}
