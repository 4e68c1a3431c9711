/**
 * The scheduler's own Prometheus series, on the host's registry: what operators watch to tell a
 * healthy queue from a stuck one — how dispatches end (a run enqueued, or set back for approval,
 * quota or a downstream error), how long a dispatch takes, how runs end, and the READY backlog.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { QueueIndex } from "./queue/redis-index.js";

/** How one dispatch of a claimed task ended. */
export type DispatchOutcome = "enqueued" | "approval" | "quota" | "error" | "cancelled";

export interface SchedulerMetrics {
  /** A dispatch ended; `seconds` from its claim, counted in the histogram for enqueued runs only. */
  dispatched(outcome: DispatchOutcome, seconds: number): void;
  /** Run outcomes applied to their tasks (after the transaction applying them committed). */
  runsEnded(results: readonly { result: string }[]): void;
}

const byRegistry = new WeakMap<Registry, SchedulerMetrics>();

/** The metrics of the scheduler on `registry`, created once per registry. */
export function schedulerMetrics(registry: Registry, index: QueueIndex): SchedulerMetrics {
  const known = byRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const dispatches = new Counter({
    name: "scheduler_dispatches_total",
    help: "Dispatches of claimed tasks, by outcome: enqueued (a run exists), or set back (approval, quota, error) or cancelled.",
    labelNames: ["outcome"],
    registers,
  });
  const dispatchSeconds = new Histogram({
    name: "scheduler_dispatch_seconds",
    help: "From a task's claim to its run enqueued at the agent manager, in seconds.",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  const runs = new Counter({
    name: "scheduler_run_outcomes_total",
    help: "Run outcomes applied to their tasks, by result (SUCCEEDED, FAILED, CANCELLED, LOST).",
    labelNames: ["result"],
    registers,
  });
  new Gauge({
    name: "scheduler_ready_tasks",
    help: "Tasks waiting in the READY index for a dispatcher (read from Redis at scrape time).",
    registers,
    async collect() {
      // A scrape while Redis is down reports nothing rather than failing the whole scrape.
      const size = await index.readySize().catch(() => undefined);
      if (size !== undefined) this.set(size);
    },
  });
  const metrics: SchedulerMetrics = {
    dispatched(outcome, seconds) {
      dispatches.inc({ outcome });
      if (outcome === "enqueued") dispatchSeconds.observe(seconds);
    },
    runsEnded(results) {
      for (const r of results) runs.inc({ result: r.result });
    },
  };
  byRegistry.set(registry, metrics);
  return metrics;
}
