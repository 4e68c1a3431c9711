import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Component, StopContext } from "../../../mesh/lifecycle.js";
import type { Logger } from "../../../mesh/logging.js";
import type { RestBridge } from "./rest-bridge.js";

/** Options of the REST listener. */
export interface RestServerOptions {
  readonly bridge: RestBridge;
  readonly port: number;
  readonly host?: string;
  readonly logger: Logger;
  /** Whether the gateway should take traffic (host started, not draining). */
  readonly ready: () => boolean;
}

/**
 * The REST front door (HTTP/1.1). `/healthz` says the process is alive; `/readyz` says it should
 * receive traffic — 503 while starting or draining, so a load balancer moves away before the
 * listener closes. Stopping closes connections not serving a request at once, lets requests and
 * streams in flight finish until the stop deadline, then cuts what is left.
 */
export class RestServer implements Component {
  private readonly server: Server;
  /** Open connections and how many requests each is serving. */
  private readonly sockets = new Map<Socket, number>();
  private stopping = false;
  private bound: number | undefined;

  constructor(private readonly opts: RestServerOptions) {
    this.server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
      const socket = req.socket;
      this.sockets.set(socket, (this.sockets.get(socket) ?? 0) + 1);
      res.once("close", () => {
        const left = (this.sockets.get(socket) ?? 1) - 1;
        this.sockets.set(socket, left);
        if (left === 0 && this.stopping) socket.destroy();
      });
      if (this.stopping) res.setHeader("connection", "close");
      this.route(req, res);
    });
    this.server.on("connection", (socket: Socket) => {
      this.sockets.set(socket, 0);
      socket.once("close", () => this.sockets.delete(socket));
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.port, this.opts.host ?? "0.0.0.0", () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const addr = this.server.address();
    this.bound = typeof addr === "object" && addr ? addr.port : this.opts.port;
  }

  get port(): number {
    if (this.bound === undefined) throw new Error("REST front door not started");
    return this.bound;
  }

  async stop(ctx?: StopContext): Promise<void> {
    const graceMs = Math.max(0, (ctx?.deadline ?? Date.now()) - Date.now());
    this.stopping = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // Node closes idle keep-alive connections, but not ones that never sent a request (HTTP
    // clients open spares): close every connection not serving a request now, the others as
    // their last response ends.
    for (const [socket, inFlight] of this.sockets) if (inFlight === 0) socket.destroy();
    const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz" || path === "/readyz") {
      const ok = path === "/healthz" || this.opts.ready();
      const body = JSON.stringify({ status: ok ? "ok" : "unavailable" });
      res.writeHead(ok ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(body);
      return;
    }
    this.opts.bridge.handle(req, res).catch((err: unknown) => {
      this.opts.logger.error({ err }, "REST handler failed");
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ code: 13, message: "internal error", details: [] }));
    });
  }
}
