import type { DescMethod } from "@bufbuild/protobuf";
import { Server, ServerCredentials, type sendUnaryData, type UntypedHandleCall } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { permissionDenied } from "../../../mesh/errors.js";
import { addReflection } from "../../../mesh/grpc/reflection.js";
import type { Component, StopContext } from "../../../mesh/lifecycle.js";
import type { RouteTable } from "../routes/route-table.js";
import { passThrough } from "../routes/upstreams.js";
import { forwardBidiStream, forwardClientStream, forwardServerStream, forwardUnary } from "./forward.js";
import { type InboundCall, ProxiedCall, type ProxyContext } from "./proxied-call.js";

/** Options of the gRPC front door. */
export interface GrpcProxyOptions {
  readonly routes: RouteTable;
  readonly context: ProxyContext;
  readonly port: number;
  readonly host?: string;
  readonly maxMessageBytes: number;
}

const KIND = {
  unary: "unary",
  server_streaming: "serverStream",
  client_streaming: "clientStream",
  bidi_streaming: "bidi",
} as const;

/**
 * The gRPC front door: one generic handler per method path, registered with pass-through
 * serializers so messages are forwarded as the client encoded them. Public methods are forwarded;
 * internal ones (no `google.api.http` annotation) are answered PERMISSION_DENIED (reason
 * INTERNAL_METHOD) without reaching a service; unknown paths get grpc-js's UNIMPLEMENTED.
 * Health and reflection (for the whole API behind the gateway) are answered here, unauthenticated,
 * so grpcurl and load balancers can use the front door directly.
 */
export class GrpcProxy implements Component {
  readonly health = new HealthImplementation({ "": "NOT_SERVING" });
  private readonly server: Server;
  private bound: number | undefined;

  constructor(private readonly opts: GrpcProxyOptions) {
    this.server = new Server({
      "grpc.max_receive_message_length": opts.maxMessageBytes,
      "grpc.max_send_message_length": opts.maxMessageBytes,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.http2.min_ping_interval_without_data_ms": 5_000,
      // Channelz tracks every call and socket for an admin service the gateway does not serve:
      // pure cost on each proxied call.
      "grpc.enable_channelz": 0,
    });
    const ctx = opts.context;
    for (const route of opts.routes.public.values()) {
      const handler = {
        unary: () => forwardUnary(route, ctx),
        server_streaming: () => forwardServerStream(route, ctx),
        client_streaming: () => forwardClientStream(route, ctx),
        bidi_streaming: () => forwardBidiStream(route, ctx),
      }[route.method.methodKind]() as UntypedHandleCall;
      this.register(route.path, route.method, handler);
    }
    for (const [path, method] of opts.routes.internal) this.register(path, method, refuse(path, ctx));
    this.health.addToServer(this.server);
    addReflection(this.server, [...opts.routes.services]);
  }

  async start(): Promise<void> {
    this.bound = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(
        `${this.opts.host ?? "0.0.0.0"}:${this.opts.port}`,
        ServerCredentials.createInsecure(),
        (err, port) => (err ? reject(err) : resolve(port)),
      ),
    );
    this.health.setStatus("", "SERVING");
  }

  /** The bound port (after start). */
  get port(): number {
    if (this.bound === undefined) throw new Error("gRPC front door not started");
    return this.bound;
  }

  /** NOT_SERVING, then let calls finish until the stop deadline, then cancel the rest. */
  async stop(ctx?: StopContext): Promise<void> {
    this.health.setStatus("", "NOT_SERVING");
    const graceMs = Math.max(0, (ctx?.deadline ?? Date.now()) - Date.now());
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private register(path: string, method: DescMethod, handler: UntypedHandleCall): void {
    this.server.register(path, handler, passThrough, passThrough, KIND[method.methodKind]);
  }
}

/** The answer to an internal method: refused before any upstream sees it. */
function refuse(path: string, ctx: ProxyContext): UntypedHandleCall {
  return ((call: InboundCall, callback?: sendUnaryData<Buffer>) => {
    const p = new ProxiedCall(call, { path }, ctx);
    const status = p.fail(
      permissionDenied(`${path} is internal: it is not callable through the gateway`, "INTERNAL_METHOD"),
    );
    if (callback) callback(status);
    else call.emit("error", status);
  }) as UntypedHandleCall;
}
