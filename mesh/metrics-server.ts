/**
 * A minimal HTTP endpoint for Prometheus scrapes.
 *
 * Why a separate port and plain node:http: the gRPC port speaks HTTP/2 only and sits behind mTLS
 * and authorisation policies; scrapers want plain HTTP/1.1 on a port the mesh can exempt. Nothing
 * but GET /metrics is served, so the port exposes no other surface.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

/** A running metrics endpoint; `stop()` fits `Lifecycle.add` directly. */
export interface MetricsServer {
  /** The bound port (useful when started with port 0 in tests). */
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Serves `registry` in the Prometheus text format at GET /metrics; anything else is 404.
 * Binds all interfaces by default because scrapers reach the pod by its IP. Port 0 picks a free
 * port; callers treat a configured METRICS_PORT of 0 as "disabled" and do not call this.
 */
export async function startMetricsServer(opts: {
  port: number;
  registry: Registry;
  host?: string;
}): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    opts.registry.metrics().then(
      (body) => {
        res.writeHead(200, { "content-type": opts.registry.contentType }).end(body);
      },
      (err: unknown) => {
        res
          .writeHead(500, { "content-type": "text/plain" })
          .end(`metrics collection failed: ${String(err)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Scrapers keep connections alive; without this, close() waits for them to time out.
        server.closeAllConnections();
      }),
  };
}
