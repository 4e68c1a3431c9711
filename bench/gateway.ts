/**
 * What the gateway costs. One upstream (AgentManagerService.GetRun, in this process) is called
 * directly, through the gRPC front door and through the REST front door: first one call at a
 * time (the latency the gateway adds when nothing queues), then at a fixed 1,000 requests/s for a
 * few seconds, open loop (latency counted from when each call was due, so a stall is not hidden
 * by the client waiting; `achieved` below the rate means the machine could not keep up and the
 * latencies are mostly queueing). The gateway runs as its own process, so its peak RSS
 * (VmHWM) is its own. Prints figures and ratios; nothing is asserted — figures only compare
 * within one run on one machine (2 cores here, shared by client, gateway and upstream).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { AgentManagerService } from "../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { createClient } from "../mesh/grpc/client.js";
import { fakeUpstream, UpstreamLog } from "../services/gateway/testing/fake-upstreams.js";
import { startUpstream } from "../services/gateway/testing/harness.js";
import { bearer } from "../services/gateway/testing/test-security.js";

const RATE = Number(process.env.BENCH_RATE ?? 1_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const SERIAL_CALLS = 500;
const AUTH = bearer("bench");

type Call = () => Promise<unknown>;

/** Fires `call` at RATE per second for `seconds`; returns latencies (ms) from each due time. */
async function openLoop(
  call: Call,
  seconds: number,
): Promise<{ latencies: number[]; errors: number; achievedRps: number }> {
  const total = RATE * seconds;
  const latencies: number[] = [];
  let errors = 0;
  let firstError: unknown;
  const start = performance.now();
  const pending: Promise<void>[] = [];
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - start) * RATE) / 1000) + 1);
    for (; sent < due; sent++) {
      const dueAt = start + (sent * 1000) / RATE;
      pending.push(
        call().then(
          () => void latencies.push(performance.now() - dueAt),
          (err: unknown) => {
            errors++;
            firstError ??= err;
          },
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  if (firstError !== undefined) console.log(`  first error: ${String(firstError).slice(0, 160)}`);
  // Below RATE when the machine cannot keep up: then latencies are mostly queueing.
  const achievedRps = (latencies.length * 1000) / (performance.now() - start);
  return { latencies, errors, achievedRps };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

interface Figures {
  p50: number;
  p99: number;
  errors: number;
  achievedRps: number;
}

/** One call at a time: the latency a call adds when nothing queues (meaningful on a busy machine). */
async function serial(call: Call, n: number): Promise<{ p50: number; p99: number }> {
  const latencies: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call();
    latencies.push(performance.now() - t);
  }
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

async function measure(
  name: string,
  call: Call,
): Promise<Figures & { serialP50: number; serialP99: number }> {
  await openLoop(call, 1); // warm-up: connections, JIT
  const s = await serial(call, SERIAL_CALLS);
  const { latencies, errors, achievedRps } = await openLoop(call, SECONDS);
  const r = { p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors, achievedRps };
  console.log(
    `${name.padEnd(14)} serial p50 ${s.p50.toFixed(2)} ms p99 ${s.p99.toFixed(2)} ms | ` +
      `at ${RATE}/s p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms, achieved ${r.achievedRps.toFixed(0)}/s, errors ${errors}`,
  );
  return { ...r, serialP50: s.p50, serialP99: s.p99 };
}

function startGatewayProcess(
  upstream: string,
): Promise<{ child: ChildProcess; grpcPort: number; httpPort: number }> {
  const script = fileURLToPath(new URL("./gateway-server.ts", import.meta.url));
  // The same heap cap as `make up` and the Deployments, so the figure is what production runs.
  const child = spawn(process.execPath, ["--max-old-space-size=112", "--import", "tsx", script], {
    env: { ...process.env, AGENT_MANAGER_ADDR: upstream },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`gateway process exited with ${code}`)));
    createInterface({ input: child.stdout! }).once("line", (line) => {
      resolve({ child, ...(JSON.parse(line) as { grpcPort: number; httpPort: number }) });
    });
  });
}

/** Peak resident set size of a process, MiB (Linux VmHWM). */
function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

export async function runGatewayBench(): Promise<Record<string, number | string>> {
  const upstream = await startUpstream(fakeUpstream("bench", new UpstreamLog()), {
    env: { LOG_LEVEL: "error" },
  });
  const gw = await startGatewayProcess(upstream.running.address);
  const opts = { retry: false, breaker: false } as const;
  const direct = createClient(AgentManagerService, { address: upstream.running.address, ...opts });
  const viaGateway = createClient(AgentManagerService, { address: `127.0.0.1:${gw.grpcPort}`, ...opts });
  const headers = { authorization: AUTH };
  try {
    const d = await measure("direct gRPC", () => direct.getRun({ runId: "r1" }));
    const g = await measure("gateway gRPC", () => viaGateway.getRun({ runId: "r1" }, { headers }));
    const url = `http://127.0.0.1:${gw.httpPort}/v1/runs/r1`;
    const r = await measure("gateway REST", async () => {
      const res = await fetch(url, { headers });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`status ${res.status}`);
    });
    const figures = {
      serial_direct_p50_ms: round(d.serialP50),
      serial_gateway_grpc_p50_ms: round(g.serialP50),
      serial_gateway_rest_p50_ms: round(r.serialP50),
      serial_added_grpc_p50_ms: round(g.serialP50 - d.serialP50),
      serial_added_grpc_p99_ms: round(g.serialP99 - d.serialP99),
      serial_rest_vs_grpc_p50_ratio: round(r.serialP50 / g.serialP50),
      rate_rps: RATE,
      seconds: SECONDS,
      direct_p50_ms: round(d.p50),
      direct_p99_ms: round(d.p99),
      gateway_grpc_p50_ms: round(g.p50),
      gateway_grpc_p99_ms: round(g.p99),
      gateway_rest_p50_ms: round(r.p50),
      gateway_rest_p99_ms: round(r.p99),
      added_p50_ms: round(g.p50 - d.p50),
      added_p99_ms: round(g.p99 - d.p99),
      grpc_vs_direct_p50_ratio: round(g.p50 / d.p50),
      rest_vs_grpc_p50_ratio: round(r.p50 / g.p50),
      rest_vs_grpc_p99_ratio: round(r.p99 / g.p99),
      direct_achieved_rps: round(d.achievedRps),
      gateway_grpc_achieved_rps: round(g.achievedRps),
      gateway_rest_achieved_rps: round(r.achievedRps),
      errors: d.errors + g.errors + r.errors,
      gateway_peak_rss_mib: round(peakRssMiB(gw.child.pid!)),
    };
    for (const [k, v] of Object.entries(figures)) console.log(`${k}: ${v}`);
    return figures;
  } finally {
    direct.close();
    viaGateway.close();
    await new Promise<void>((resolve) => {
      gw.child.removeAllListeners("exit");
      gw.child.once("exit", () => resolve());
      gw.child.kill("SIGTERM");
    });
    await upstream.cleanup();
  }
}

const round = (n: number) => Math.round(n * 100) / 100;

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await runGatewayBench();
  process.exit(0);
}
