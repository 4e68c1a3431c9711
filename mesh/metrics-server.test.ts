import { afterEach, describe, expect, it } from "vitest";
import { createMetrics } from "./metrics.js";
import { type MetricsServer, startMetricsServer } from "./metrics-server.js";

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

describe("startMetricsServer", () => {
  it("serves the registry over real HTTP at GET /metrics and 404 elsewhere", async () => {
    const metrics = createMetrics({ service: "gateway", defaultMetrics: false });
    metrics.rpcServer.observe("/x.v1.S/M", "OK", 0.01);
    server = await startMetricsServer({ port: 0, registry: metrics.registry, host: "127.0.0.1" });
    expect(server.port).toBeGreaterThan(0);

    const ok = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toContain("text/plain");
    expect(await ok.text()).toContain(
      'grpc_server_handled_total{grpc_method="/x.v1.S/M",grpc_code="OK",service="gateway"} 1',
    );

    for (const [method, path] of [
      ["GET", "/"],
      ["GET", "/metricsx"],
      ["POST", "/metrics"],
    ] as const) {
      const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(404);
      await res.body?.cancel();
    }
  });

  it("stops promptly even with a kept-alive scraper connection, and frees the port", async () => {
    const metrics = createMetrics({ service: "s", defaultMetrics: false });
    server = await startMetricsServer({ port: 0, registry: metrics.registry, host: "127.0.0.1" });
    const { port } = server;
    await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const started = Date.now();
    await server.stop();
    server = undefined;
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });

  it("rejects when the port is taken", async () => {
    const metrics = createMetrics({ service: "s", defaultMetrics: false });
    server = await startMetricsServer({ port: 0, registry: metrics.registry, host: "127.0.0.1" });
    await expect(
      startMetricsServer({ port: server.port, registry: metrics.registry, host: "127.0.0.1" }),
    ).rejects.toThrow(/EADDRINUSE/);
  });
});
