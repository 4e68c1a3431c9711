/**
 * Prometheus metrics every service exposes, under names shared across the mesh.
 *
 * Why one factory with fixed names: dashboards and alerts (error ratio, latency SLO, outbox lag,
 * consumer lag, open breakers) are written once and work for every service, because every service
 * records the same series with the same labels. The names follow the grpc-ecosystem
 * go-grpc-prometheus convention so stock Grafana dashboards apply. Each call creates its own
 * Registry (no prom-client global), so tests and several servers in one process never collide.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** RPC latency buckets in seconds: 0.1 ms (in-process, cache hits) to 10 s (deadline territory). */
export const RPC_LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export type BreakerStateName = "closed" | "open" | "half_open";
const BREAKER_STATES: readonly BreakerStateName[] = ["closed", "open", "half_open"];

/** The metrics handle a service passes to its gRPC server, clients, relays and consumers. */
export interface Metrics {
  /** Scrape this (see `startMetricsServer`); services may register their own metrics on it too. */
  readonly registry: Registry;
  /** One observation per finished server RPC; `method` is the full path "/pkg.Service/Method". */
  readonly rpcServer: { observe(method: string, code: string, seconds: number): void };
  /** One observation per finished client RPC; `target` names the downstream service. */
  readonly rpcClient: { observe(target: string, method: string, code: string, seconds: number): void };
  /** Transactional outbox backlog: rows not yet relayed, and the age of the oldest one. */
  readonly outbox: { setPending(n: number): void; setOldestAgeSeconds(seconds: number): void };
  /** Messages a durable JetStream consumer has not yet received (its lag). */
  readonly consumer: { setLag(consumer: string, pending: number): void };
  /** Circuit breaker state: exactly one of closed/open/half_open is 1 for each breaker. */
  readonly breaker: { setState(breaker: string, state: BreakerStateName): void };
}

/**
 * Creates the service's registry with the standard Node process metrics (unprefixed, as the
 * community dashboards expect) and the mesh-wide series; every series is labelled `service`.
 */
export function createMetrics(opts: { service: string; defaultMetrics?: boolean }): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: opts.service });
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const serverHandled = new Counter({
    name: "grpc_server_handled_total",
    help: "RPCs completed on the server, by method and gRPC status code.",
    labelNames: ["grpc_method", "grpc_code"] as const,
    registers,
  });
  const serverSeconds = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Time from receiving an RPC to sending its status, in seconds.",
    labelNames: ["grpc_method"] as const,
    buckets: RPC_LATENCY_BUCKETS,
    registers,
  });
  const clientHandled = new Counter({
    name: "grpc_client_handled_total",
    help: "RPCs completed by this service's clients, by target, method and gRPC status code.",
    labelNames: ["grpc_target", "grpc_method", "grpc_code"] as const,
    registers,
  });
  const clientSeconds = new Histogram({
    name: "grpc_client_handling_seconds",
    help: "Time from starting an outgoing RPC to receiving its status, in seconds (retries included).",
    labelNames: ["grpc_target", "grpc_method"] as const,
    buckets: RPC_LATENCY_BUCKETS,
    registers,
  });
  const outboxPending = new Gauge({
    name: "outbox_pending",
    help: "Outbox events written but not yet published to NATS.",
    registers,
  });
  const outboxOldest = new Gauge({
    name: "outbox_oldest_age_seconds",
    help: "Age of the oldest unpublished outbox event, in seconds (0 when empty).",
    registers,
  });
  const consumerPending = new Gauge({
    name: "nats_consumer_pending",
    help: "Messages pending delivery to a durable JetStream consumer.",
    labelNames: ["consumer"] as const,
    registers,
  });
  const breakerState = new Gauge({
    name: "circuit_breaker_state",
    help: "1 for the current state of each circuit breaker, 0 for the others.",
    labelNames: ["breaker", "state"] as const,
    registers,
  });

  return {
    registry,
    rpcServer: {
      observe(method, code, seconds) {
        serverHandled.inc({ grpc_method: method, grpc_code: code });
        serverSeconds.observe({ grpc_method: method }, seconds);
      },
    },
    rpcClient: {
      observe(target, method, code, seconds) {
        clientHandled.inc({ grpc_target: target, grpc_method: method, grpc_code: code });
        clientSeconds.observe({ grpc_target: target, grpc_method: method }, seconds);
      },
    },
    outbox: {
      setPending: (n) => outboxPending.set(n),
      setOldestAgeSeconds: (s) => outboxOldest.set(s),
    },
    consumer: { setLag: (consumer, n) => consumerPending.set({ consumer }, n) },
    breaker: {
      setState(breaker, state) {
        for (const s of BREAKER_STATES) breakerState.set({ breaker, state: s }, s === state ? 1 : 0);
      },
    },
  };
}
