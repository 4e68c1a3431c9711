import { describe, expect, it } from "vitest";
import { createMetrics } from "./metrics.js";

/** The value of the sample `name` whose labels include `labels` (label order in the text varies). */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe("createMetrics", () => {
  it("exposes the mesh-wide series with service and gRPC labels", async () => {
    const m = createMetrics({ service: "scheduler" });
    const method = "/codex.scheduler.v1.SchedulerService/Enqueue";
    m.rpcServer.observe(method, "OK", 0.0003);
    m.rpcServer.observe(method, "NOT_FOUND", 2);
    m.rpcClient.observe("projects", "/codex.projects.v1.ProjectService/GetProject", "UNAVAILABLE", 0.05);
    m.outbox.setPending(3);
    m.outbox.setOldestAgeSeconds(1.5);
    m.consumer.setLag("scheduler-work-items", 42);
    m.breaker.setState("projects", "open");
    const text = await m.registry.metrics();
    const svc = { service: "scheduler" };

    expect(sample(text, "grpc_server_handled_total", { ...svc, grpc_method: method, grpc_code: "OK" })).toBe(
      1,
    );
    expect(sample(text, "grpc_server_handled_total", { grpc_method: method, grpc_code: "NOT_FOUND" })).toBe(
      1,
    );
    const bucket = (le: string) =>
      sample(text, "grpc_server_handling_seconds_bucket", { ...svc, grpc_method: method, le });
    expect([bucket("0.0001"), bucket("0.00025"), bucket("0.0005"), bucket("2.5"), bucket("10")]).toEqual([
      0, 0, 1, 2, 2,
    ]);
    expect(sample(text, "grpc_server_handling_seconds_count", { grpc_method: method })).toBe(2);

    const client = { grpc_target: "projects", grpc_method: "/codex.projects.v1.ProjectService/GetProject" };
    expect(sample(text, "grpc_client_handled_total", { ...svc, ...client, grpc_code: "UNAVAILABLE" })).toBe(
      1,
    );
    expect(sample(text, "grpc_client_handling_seconds_bucket", { ...client, le: "0.025" })).toBe(0);
    expect(sample(text, "grpc_client_handling_seconds_bucket", { ...client, le: "0.05" })).toBe(1);

    expect(sample(text, "outbox_pending", svc)).toBe(3);
    expect(sample(text, "outbox_oldest_age_seconds", svc)).toBe(1.5);
    expect(sample(text, "nats_consumer_pending", { ...svc, consumer: "scheduler-work-items" })).toBe(42);
    expect(sample(text, "circuit_breaker_state", { breaker: "projects", state: "open" })).toBe(1);
    expect(sample(text, "circuit_breaker_state", { breaker: "projects", state: "closed" })).toBe(0);
    // Standard Node process metrics, unprefixed and labelled with the service.
    expect(sample(text, "process_cpu_user_seconds_total", svc)).toBeGreaterThanOrEqual(0);
    expect(sample(text, "nodejs_eventloop_lag_seconds", svc)).toBeGreaterThanOrEqual(0);
    expect(text).toContain("# TYPE grpc_server_handling_seconds histogram");
  });

  it("moves the breaker gauge so exactly one state is 1", async () => {
    const m = createMetrics({ service: "s", defaultMetrics: false });
    m.breaker.setState("b", "open");
    m.breaker.setState("b", "half_open");
    const values = (await m.registry.getSingleMetric("circuit_breaker_state")?.get())?.values ?? [];
    expect(values.map((v) => [v.labels.state, v.value])).toEqual([
      ["closed", 0],
      ["open", 0],
      ["half_open", 1],
    ]);
  });

  it("keeps registries apart, so two services in one process do not collide", async () => {
    const a = createMetrics({ service: "a", defaultMetrics: false });
    const b = createMetrics({ service: "b", defaultMetrics: false });
    a.outbox.setPending(1);
    const text = await b.registry.metrics();
    expect(text).toContain('outbox_pending{service="b"} 0');
    expect(text).not.toContain('service="a"');
    expect(text).not.toContain("process_cpu");
  });
});
