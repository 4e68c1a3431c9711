import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
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
 * listener closes. Stopping closes idle keep-alive connections at once, lets requests and streams
 * in flight finish until the stop deadline, then cuts what is left.
 */
export class RestServer implements Component {
  private readonly server: Server;
  private bound: number | undefined;

  constructor(private readonly opts: RestServerOptions) {
    this.server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) =>
      this.route(req, res),
    );
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
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
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
