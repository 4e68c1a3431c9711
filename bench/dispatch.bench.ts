/**
 * Dispatch benchmark: the whole control plane as separate processes (compiled with tsc, as in
 * production), N simulated agents as in-process SDK workers with no-op work over real Connect
 * streams, and runs enqueued with AgentManagerService.EnqueueRun exactly as the scheduler does.
 *
 * Measures, in one run on this machine:
 * - throughput: runs/s from the first EnqueueRun to the last completion acknowledged by the
 *   agent manager (durable), with EnqueueRun calls kept 256 in flight; and runs/s up to the
 *   moment every JetStream consumer (audit, notification, scheduler) has caught up with those
 *   runs' events, since a rate the event pipeline cannot follow is not sustained;
 * - latency: enqueue → assignment received by an agent, p50/p90/p99, at fixed open-loop rates
 *   of 100/s and 500/s (latency counted from the scheduled send time, so a slow sender cannot
 *   hide queueing — no coordinated omission), with the EnqueueRun response time beside it to
 *   tell the manager's commit from the push to the agent; each rate phase starts once the fleet
 *   is idle again (every JetStream consumer of the stack has caught up with the previous phase's
 *   events, up to 4 minutes), so it measures that rate's steady state, and the wait is printed
 *   (the consumers' catch-up time after the throughput phase);
 * - peak RSS (VmHWM) of every service process.
 * Prints the figures and their ratio to the targets (≥ 1,000 runs/s, p99 ≤ 25 ms at 100/s,
 * ≤ 150 MB per service). It never asserts. Env: BENCH_AGENTS (10), BENCH_RUNS (6000),
 * BENCH_RATE_SECONDS (10), BENCH_NODE_OPTIONS (all services; by default each gets its
 * Deployment's flags: --max-old-space-size=128, and --max-semi-space-size=8 where set),
 * BENCH_RATES (100,500), BENCH_SKIP_BUILD=1 (reuse dist/.bench), BENCH_SERVICES (a comma-separated subset; all by default).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { AgentManagerService } from "../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { RunState } from "../gen/codex/agentmanager/v1/run_pb.js";
import { createClient } from "../mesh/grpc/client.js";
import { createLogger } from "../mesh/logging.js";
import { connectNats } from "../mesh/nats/connection.js";
import { subjectsFor } from "../mesh/nats/subjects.js";
import { AgentWorker } from "../sdk/index.js";
import { ProcessStack, ROOT } from "../test/e2e/process-stack.js";
import { freePort } from "../test/support/ports.js";
import type { Benchmark } from "./run.js";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 10);
const RUNS = Number(process.env.BENCH_RUNS ?? 6_000);
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 10);
const IN_FLIGHT = 256;
/** Fixed rates of the latency phases (BENCH_RATES, e.g. "100"). */
const RATES = (process.env.BENCH_RATES ?? "100,500")
  .split(",")
  .map(Number)
  .filter((r) => r > 0);
/** As the Deployments set it (istio/base/deployments/*.yaml); BENCH_NODE_OPTIONS overrides. */
const NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS ?? "--max-old-space-size=128";
/** Per-service flags the Deployments add (istio/base/deployments/<name>.yaml). */
const DEPLOYMENT_EXTRA: Record<string, string> = {
  "agent-manager": "--max-semi-space-size=8",
  gateway: "--max-semi-space-size=8",
};
const nodeOptionsFor = (name: string) =>
  process.env.BENCH_NODE_OPTIONS ?? [NODE_OPTIONS, DEPLOYMENT_EXTRA[name] ?? ""].join(" ").trim();
const DIST = `${ROOT}dist/.bench`;
/** Longest wait for the consumers to catch up before a fixed-rate phase. */
const QUIESCE_LIMIT_MS = 240_000;
const TARGETS = { runsPerSecond: 1_000, p99At100Ms: 25, rssMb: 150 };

/** Enqueue time per task id, and what the agents saw. */
class Probe {
  readonly enqueuedAt = new Map<string, number>();
  readonly assignedLatency = new Map<string, number>();
  completed = 0;
  lastCompletedAt = 0;
  /** Runs that left an agent otherwise: handed back, or abandoned after a lost lease. */
  readonly otherSettlements: Record<string, number> = {};
  #waiters: { n: number; resolve: () => void }[] = [];

  assigned(taskId: string): void {
    const t = this.enqueuedAt.get(taskId);
    if (t !== undefined) this.assignedLatency.set(taskId, performance.now() - t);
  }

  settled(how: string): void {
    if (how !== "completed") {
      this.otherSettlements[how] = (this.otherSettlements[how] ?? 0) + 1;
      return;
    }
    this.completed += 1;
    this.lastCompletedAt = performance.now();
    const ready = this.#waiters.filter((w) => this.completed >= w.n);
    this.#waiters = this.#waiters.filter((w) => this.completed < w.n);
    for (const w of ready) w.resolve();
  }

  whenCompleted(n: number): Promise<void> {
    if (this.completed >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }
}

function build(): void {
  console.log("building services with tsc (dist/.bench)...");
  try {
    execFileSync(
      process.execPath,
      [`${ROOT}node_modules/typescript/bin/tsc`, "-p", "tsconfig.build.json", "--outDir", DIST],
      {
        cwd: ROOT,
        stdio: "pipe",
      },
    );
  } catch (err) {
    // Type errors still emit JavaScript; only a missing entry point stops the benchmark.
    if (!existsSync(`${DIST}/services/agent-manager/main.js`)) throw err;
    console.log("tsc reported errors; running the JavaScript it emitted");
  }
}

/**
 * Waits for `n` completions, saying every 5 s how far it got; gives up after 30 s without
 * progress (a stall is reported, never waited out). Returns how many were still missing.
 */
async function progress(probe: Probe, n: number, phase: string): Promise<number> {
  let last = probe.completed;
  let lastChange = Date.now();
  const timer = setInterval(() => console.log(`  ${phase}: ${probe.completed}/${n} completed`), 5_000);
  try {
    while (probe.completed < n) {
      await Promise.race([probe.whenCompleted(n), new Promise((r) => setTimeout(r, 1_000))]);
      if (probe.completed !== last) [last, lastChange] = [probe.completed, Date.now()];
      if (Date.now() - lastChange > 30_000) {
        console.log(`  ${phase}: stalled at ${probe.completed}/${n} for 30 s; giving up on the rest`);
        break;
      }
    }
    return Math.max(0, n - probe.completed);
  } finally {
    clearInterval(timer);
  }
}

/** Runs the manager holds unfinished (or lost or failed), by state: what a stall left behind. */
async function unfinished(client: ReturnType<typeof createClient<typeof AgentManagerService>>) {
  const out: Record<string, number> = {};
  for (const state of [
    RunState.PENDING,
    RunState.ASSIGNED,
    RunState.RUNNING,
    RunState.FAILED,
    RunState.LOST,
  ]) {
    const { runs } = await client.listRuns({ states: [state], pageSize: 500 }).catch(() => ({ runs: [] }));
    out[RunState[state]] = runs.length;
  }
  return out;
}

/** The servers the stack runs on, by process name: their CPU is part of every run's cost. */
const INFRA = ["postgres", "nats-server", "redis-server"] as const;

/**
 * CPU seconds so far of every process of the infrastructure servers, summed per server (all of
 * Postgres's backends together). They are shared servers: on a quiet machine the stack is their
 * only client, and the figure is what its runs cost them.
 */
function infraCpuSeconds(): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(INFRA.map((n) => [`${n} (server)`, 0]));
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (!(INFRA as readonly string[]).includes(name)) continue;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const key = `${name} (server)`;
      out[key] = (out[key] ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // the process ended between readdir and read
    }
  }
  return out;
}

/** CPU seconds so far of every service and infrastructure server. */
const fleetCpuSeconds = (stack: ProcessStack): Record<string, number | undefined> => ({
  ...stack.cpuSeconds(),
  ...infraCpuSeconds(),
});

/** Share of one core each service (and this process: SDK agents + enqueuer) used during a phase. */
function cpuShares(
  before: { services: Record<string, number | undefined> },
  after: Record<string, number | undefined>,
  bench: NodeJS.CpuUsage,
  seconds: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, end] of Object.entries(after)) {
    out[name] = round((100 * ((end ?? 0) - (before.services[name] ?? 0))) / seconds);
  }
  out["bench (agents + enqueuer)"] = round((bench.user + bench.system) / 1e4 / seconds);
  return out;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/**
 * Waits until the services together use under a tenth of a core over a second (every consumer
 * caught up), at most 90 s; returns the seconds waited.
 */
async function quiesce(stack: ProcessStack, jsm: JetStreamManager): Promise<number> {
  const t0 = performance.now();
  const total = () => Object.values(stack.cpuSeconds()).reduce<number>((a, b) => a + (b ?? 0), 0);
  let last = total();
  while (performance.now() - t0 < QUIESCE_LIMIT_MS) {
    await new Promise((r) => setTimeout(r, 1_000));
    const now = total();
    // Caught up: no event waits for any consumer of the stack, and the fleet is near idle
    // (heartbeats and polls of seven services cost some CPU even then).
    if (now - last < 0.2 && (await consumerBacklog(jsm, stack.prefix)) === 0) break;
    last = now;
  }
  return round((performance.now() - t0) / 1000);
}

/** When every consumer of the stack has caught up (performance.now()), polled every 100 ms. */
async function caughtUp(jsm: JetStreamManager, prefix: string): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < QUIESCE_LIMIT_MS) {
    const at = performance.now();
    if ((await consumerBacklog(jsm, prefix)) === 0) return at;
    await new Promise((r) => setTimeout(r, 100));
  }
  return performance.now();
}

/** Messages not yet delivered or not yet acknowledged, summed over the stack's consumers. */
async function consumerBacklog(jsm: JetStreamManager, prefix: string): Promise<number> {
  const streams = subjectsFor(prefix).streams;
  let backlog = 0;
  for (const stream of [streams.events, streams.commands, streams.system]) {
    for await (const c of jsm.consumers.list(stream)) backlog += c.num_pending + c.num_ack_pending;
  }
  return backlog;
}

/** The agent manager's group-commit totals so far, from its Prometheus endpoint. */
async function groupCommits(port: number): Promise<{ count: number; changes: number; seconds: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (name: string) =>
    Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  return {
    count: value("agent_manager_group_commit_size_count"),
    changes: value("agent_manager_group_commit_size_sum"),
    seconds: value("agent_manager_group_commit_seconds_sum"),
  };
}

const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

export const bench: Benchmark = {
  name: "dispatch",
  async run() {
    if (process.env.BENCH_SKIP_BUILD !== "1" || !existsSync(`${DIST}/services/agent-manager/main.js`))
      build();
    // BENCH_SERVICES=agent-manager,audit: a subset, to tell one service's cost from the fleet's.
    const subset = process.env.BENCH_SERVICES?.split(",").filter(Boolean);
    const amMetricsPort = await freePort();
    const env: Record<string, Record<string, string>> = {
      "*": { LOG_LEVEL: "error", NODE_OPTIONS },
      "agent-manager": {
        METRICS_PORT: String(amMetricsPort),
        NODE_OPTIONS: nodeOptionsFor("agent-manager"),
      },
      gateway: { NODE_OPTIONS: nodeOptionsFor("gateway") },
      // The production default; the e2e stack polls every 100 ms to keep its tests quick.
      scheduler: { IDLE_POLL: "1s" },
    };
    // BENCH_SERVICE_ENV='{"agent-manager":{"OUTBOX_LINGER":"20ms"}}': settings for an A/B run.
    const extraEnv = JSON.parse(process.env.BENCH_SERVICE_ENV ?? "{}") as Record<
      string,
      Record<string, string>
    >;
    for (const [service, vars] of Object.entries(extraEnv)) env[service] = { ...env[service], ...vars };
    const stack = await new ProcessStack({
      ...(subset ? { services: subset } : {}),
      runner: { distDir: DIST },
      env,
    }).start();
    const nc = await connectNats({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222", name: "bench" });
    const jsm = await jetstreamManager(nc);
    const probe = new Probe();
    const logger = createLogger({ service: "bench-agent", level: "error" });
    const workers: AgentWorker[] = [];
    const enqueuer = createClient(AgentManagerService, {
      address: stack.address("agent-manager"),
      principalSecret: stack.meshSecret,
      defaultPrincipal: { type: "service", id: "scheduler" },
      retry: false,
      breaker: false,
    });
    try {
      for (let i = 0; i < AGENTS; i++) {
        const w = new AgentWorker({
          connection: { address: stack.address("agent-manager"), meshSecret: stack.meshSecret },
          agent: { name: `bench-${i}`, capacity: 64 },
          logger,
          onRunSettled: (_id, how) => probe.settled(how),
          handler: async (run) => {
            probe.assigned(run.run.taskId);
          },
        });
        workers.push(w);
      }
      await Promise.all(workers.map((w) => w.start()));
      let seq = 0;
      const enqueue = (at: number) => {
        const taskId = `bench-task-${seq++}`;
        probe.enqueuedAt.set(taskId, at);
        return enqueuer.enqueueRun({
          taskId,
          workItemId: `bench-wi-${seq}`,
          projectId: "bench",
          attempt: 1,
          workItem: { workItemId: `bench-wi-${seq}`, projectId: "bench", title: "bench no-op" },
        });
      };
      const closedLoop = async (n: number) => {
        let next = 0;
        const lane = async () => {
          while (next < n) {
            next += 1;
            await enqueue(performance.now());
          }
        };
        await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
      };

      // Warm-up: JIT, connection pools, group-commit batch sizes.
      const base = probe.completed;
      await closedLoop(500);
      const warmMissing = await progress(probe, base + 500, "warm-up");

      console.log(
        `throughput: ${RUNS} runs, ${AGENTS} agents × capacity 64, ${IN_FLIGHT} enqueues in flight`,
      );
      const cpuBefore = { services: fleetCpuSeconds(stack), bench: process.cpuUsage() };
      const t0 = performance.now();
      const before = probe.completed;
      await closedLoop(RUNS);
      const missing = await progress(probe, before + RUNS, "throughput");
      // Up to the last completion seen, so a stall's 30 s wait is not counted as work.
      const seconds = (probe.lastCompletedAt - t0) / 1000;
      const runsPerSecond = (RUNS - missing) / seconds;
      const cpuShare = cpuShares(
        cpuBefore,
        fleetCpuSeconds(stack),
        process.cpuUsage(cpuBefore.bench),
        seconds,
      );
      // The runs are done, but their events may not be: the relay and the consumers (audit,
      // notification, scheduler) can trail behind. Sustained means they keep up, so the time
      // until every consumer has caught up is measured too.
      const lastCompletion = probe.lastCompletedAt;
      const caughtUpAt = await caughtUp(jsm, stack.prefix);
      const sustainedPerSecond = (RUNS - missing) / ((caughtUpAt - t0) / 1000);

      const commits = await groupCommits(amMetricsPort);
      const latency: Record<number, number[]> = {};
      const rpc: Record<number, number[]> = {};
      const idleWaits: Record<number, number> = {};
      const failedEnqueues: Record<number, number> = {};
      const rateCpu: Record<number, Record<string, number>> = {};
      const rateCommits: Record<number, { count: number; changes: number; seconds: number }> = {};
      for (const rate of RATES) {
        // A fixed-rate phase measures the steady state at that rate, not the tail of the previous
        // phase's backlog (consumers still catching up on its events): wait for the fleet to idle.
        idleWaits[rate] = await quiesce(stack, jsm);
        probe.assignedLatency.clear();
        const total = rate * RATE_SECONDS;
        const phaseStart = probe.completed;
        const phaseCpu = { services: fleetCpuSeconds(stack), bench: process.cpuUsage() };
        const commitsBefore = await groupCommits(amMetricsPort);
        const start = performance.now() + 50;
        const sent: Promise<number | undefined>[] = [];
        for (let i = 0; i < total; i++) {
          const at = start + (i * 1000) / rate;
          const wait = at - performance.now();
          if (wait > 1) await new Promise((r) => setTimeout(r, wait));
          // A refused or timed-out enqueue is counted and reported, never allowed to end the run.
          sent.push(
            enqueue(at).then(
              () => performance.now() - at,
              () => {
                failedEnqueues[rate] = (failedEnqueues[rate] ?? 0) + 1;
                return undefined;
              },
            ),
          );
        }
        rpc[rate] = (await Promise.all(sent)).filter((t) => t !== undefined).sort((a, b) => a - b);
        rateCpu[rate] = cpuShares(
          phaseCpu,
          fleetCpuSeconds(stack),
          process.cpuUsage(phaseCpu.bench),
          (performance.now() - start) / 1000,
        );
        await Promise.race([
          probe.whenCompleted(phaseStart + total),
          new Promise((r) => setTimeout(r, 15_000)),
        ]);
        latency[rate] = [...probe.assignedLatency.values()].sort((a, b) => a - b);
        const commitsAfter = await groupCommits(amMetricsPort);
        rateCommits[rate] = {
          count: commitsAfter.count - commitsBefore.count,
          changes: commitsAfter.changes - commitsBefore.changes,
          seconds: commitsAfter.seconds - commitsBefore.seconds,
        };
        console.log(`latency at ${rate}/s: ${latency[rate].length}/${total} assignments received`);
      }

      const rss = stack.peakRss();
      const figures: Record<string, number | string> = {
        "runs/s (enqueue→completion)": round(runsPerSecond),
        "runs/s with every event consumed (to the consumers' catch-up)": round(sustainedPerSecond),
        "s from the last completion to the consumers' catch-up": round(
          (caughtUpAt - lastCompletion) / 1000,
          2,
        ),
        "runs never completed (warm-up + throughput)": warmMissing + missing,
        "runs/s ratio to target 1000": round(runsPerSecond / TARGETS.runsPerSecond, 2),
      };
      for (const rate of RATES) {
        const l = latency[rate] ?? [];
        for (const p of [50, 90, 99])
          figures[`enqueue→assignment p${p} @${rate}/s ms`] = round(percentile(l, p), 2);
        for (const p of [50, 99])
          figures[`EnqueueRun response p${p} @${rate}/s ms`] = round(percentile(rpc[rate] ?? [], p), 2);
      }
      for (const rate of RATES)
        figures[`s waited for the fleet to idle before @${rate}/s`] = idleWaits[rate] ?? NaN;
      figures["AM group commits (warm-up + throughput)"] = commits.count;
      figures["AM changes per group commit (mean)"] = round(commits.changes / commits.count);
      for (const rate of RATES) {
        const c = rateCommits[rate];
        if (!c) continue;
        figures[`AM group commits @${rate}/s`] = c.count;
        figures[`AM changes per group commit @${rate}/s (mean)`] = round(c.changes / c.count);
        figures[`AM group commit ms @${rate}/s (mean)`] = round((1000 * c.seconds) / c.count, 2);
      }
      figures["AM group commit ms (mean)"] = round((1000 * commits.seconds) / commits.count, 2);
      figures["p99 @100/s ratio to target 25ms"] = round(
        percentile(latency[100] ?? [], 99) / TARGETS.p99At100Ms,
        2,
      );
      for (const [name, share] of Object.entries(cpuShare))
        figures[`CPU % during throughput: ${name}`] = share;
      for (const rate of RATES)
        for (const [name, share] of Object.entries(rateCpu[rate] ?? {}))
          figures[`CPU % @${rate}/s: ${name}`] = share;
      const admin = createClient(AgentManagerService, {
        address: stack.address("agent-manager"),
        principalSecret: stack.meshSecret,
        defaultPrincipal: { type: "user", id: "bench", projectRoles: { "*": "admin" } },
        retry: false,
        breaker: false,
      });
      for (const [state, count] of Object.entries(await unfinished(admin))) {
        figures[`runs ${state} at the end`] = count;
      }
      for (const [how, count] of Object.entries(probe.otherSettlements))
        figures[`runs ${how} by an agent`] = count;
      admin.close();
      figures["load average (1 min) at the end"] = round(loadavg()[0] ?? Number.NaN, 2);
      for (const [name, bytes] of Object.entries(rss)) {
        const mb = (bytes ?? Number.NaN) / (1024 * 1024);
        figures[`peak RSS ${name} MB`] = round(mb);
        figures[`peak RSS ${name} ratio to 150MB`] = round(mb / TARGETS.rssMb, 2);
      }
      for (const [k, v] of Object.entries(figures)) console.log(`  ${k}: ${v}`);
      return figures;
    } finally {
      enqueuer.close();
      await Promise.all(workers.map((w) => w.stop("bench over")));
      await nc.close();
      await stack.stop();
    }
  },
};
