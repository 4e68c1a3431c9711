/** The agent manager's own Prometheus series, on the host's registry. */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export interface AmMetrics {
  heartbeats: Counter;
  batchSize: Histogram;
  batchSeconds: Histogram;
  connected: Gauge;
  pending: Gauge;
  claims: Counter<"outcome">;
}

export function createAmMetrics(registry: Registry): AmMetrics {
  const registers = [registry];
  return {
    heartbeats: new Counter({
      name: "agent_manager_heartbeats_total",
      help: "Agent heartbeats processed (stream heartbeats and RenewLease); none is written to Postgres.",
      registers,
    }),
    batchSize: new Histogram({
      name: "agent_manager_group_commit_size",
      help: "Run changes committed per transaction.",
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers,
    }),
    batchSeconds: new Histogram({
      name: "agent_manager_group_commit_seconds",
      help: "Duration of one group-commit transaction, in seconds.",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    connected: new Gauge({
      name: "agent_manager_connected_agents",
      help: "Agents with an open Connect stream on this replica.",
      registers,
    }),
    pending: new Gauge({
      name: "agent_manager_pending_runs",
      help: "PENDING runs in this replica's dispatch queue.",
      registers,
    }),
    claims: new Counter({
      name: "agent_manager_claims_total",
      help: "Claims of a queued run for an agent: taken, or missed (the run was no longer PENDING, or not yet inserted).",
      labelNames: ["outcome"],
      registers,
    }),
  };
}
