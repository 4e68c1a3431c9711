/**
 * What the gateway costs. One upstream (AgentManagerService.GetRun, in this process) is called
 * directly, through the gRPC front door and through the REST front door: first one call at a
 * time (the latency the gateway adds when nothing queues), then at a fixed 1,000 requests/s for a
 * few seconds, open loop (latency counted from when each call was due, so a stall is not hidden
 * by the client waiting; `achieved` below the rate means the machine could not keep up and the
 * latencies are mostly queueing). The gateway runs as its own process, so its peak RSS
 * (VmHWM) is its own, and so is its CPU time per call. The same is measured for the ext_authz
 * Check the gateway answers for the Envoy front door (what each request behind Envoy costs the
 * gateway, for the same GetRun). Prints figures and ratios; nothing is
 * asserted — figures only compare within one run on one machine (2 cores here, shared by client,
 * gateway and upstream).
 *
 * The gateway runs as production runs it: JavaScript compiled by tsc (into dist/.bench-gateway)
 * with the production heap cap, not under tsx, whose loader thread and transpiled sources inflate
 * RSS and CPU. BENCH_GATEWAY_RUNTIME=tsx runs it under tsx instead (the former figures);
 * BENCH_SKIP_BUILD=1 reuses the last build; BENCH_GATEWAY_NODE_ARGS adds node flags (profiling);
 * BENCH_GATEWAY_ENTRY runs another compiled bench/gateway-server.js (A/B against another build).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { credentials, Client as GrpcClient } from "@grpc/grpc-js";
import { AgentManagerService } from "../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { GetRunRequestSchema } from "../gen/codex/agentmanager/v1/run_pb.js";
import { CheckRequestSchema, CheckResponseSchema } from "../gen/envoy/service/auth/v3/external_auth_pb.js";
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

/** A GET with node:http on `agent`; resolves once the whole body arrived, rejects on non-200. */
function httpGet(url: string, headers: Record<string, string>, agent: http.Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers, agent }, (res) => {
        res.on("data", () => {});
        res.on("end", () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`)),
        );
        res.on("error", reject);
      })
      .on("error", reject);
  });
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
  gatewayPid?: number,
): Promise<
  Figures & { serialP50: number; serialP99: number; gatewayCpuUsPerCall: number; otherCpu: number }
> {
  await openLoop(call, 1); // warm-up: connections, JIT
  const s = await serial(call, SERIAL_CALLS);
  const cpuBefore = gatewayPid === undefined ? 0 : cpuMs(gatewayPid);
  const machineBefore = machineCpu();
  const { latencies, errors, achievedRps } = await openLoop(call, SECONDS);
  const gatewayCpu = gatewayPid === undefined ? 0 : cpuMs(gatewayPid) - cpuBefore;
  const machine = machineCpu();
  // Cores busy with processes other than this one and the gateway: other work on the machine
  // competes for the same 2 cores, and then the latencies say more about it than about the gateway.
  const ownMs = machine.ownMs - machineBefore.ownMs + gatewayCpu;
  const otherCpu =
    Math.max(0, machine.busyMs - machineBefore.busyMs - ownMs) / (machine.at - machineBefore.at);
  const r = { p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors, achievedRps };
  const gatewayCpuUsPerCall = (gatewayCpu * 1000) / Math.max(1, latencies.length + errors);
  console.log(
    `${name.padEnd(14)} serial p50 ${s.p50.toFixed(2)} ms p99 ${s.p99.toFixed(2)} ms | ` +
      `at ${RATE}/s p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms, achieved ${r.achievedRps.toFixed(0)}/s, errors ${errors}` +
      (gatewayPid === undefined ? "" : `, gateway CPU ${gatewayCpuUsPerCall.toFixed(0)} us/call`) +
      `, other processes ${otherCpu.toFixed(2)} cores`,
  );
  return { ...r, serialP50: s.p50, serialP99: s.p99, gatewayCpuUsPerCall, otherCpu };
}

/** Busy CPU time of the whole machine and of this process so far, ms, and when (ms). */
function machineCpu(): { busyMs: number; ownMs: number; at: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  // cpu user nice system idle iowait irq softirq steal …, in clock ticks (100 per second).
  const t = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = (t[0] ?? 0) + (t[1] ?? 0) + (t[2] ?? 0) + (t[5] ?? 0) + (t[6] ?? 0) + (t[7] ?? 0);
  const own = process.cpuUsage();
  return { busyMs: busy * 10, ownMs: (own.user + own.system) / 1000, at: performance.now() };
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DIST = `${ROOT}dist/.bench-gateway`;
/** The node flags scripts/start.ts gives the gateway, so the figures are what production runs. */
const PRODUCTION_NODE_FLAGS = ["--max-old-space-size=112", "--max-semi-space-size=8"];

/** Compiles bench/gateway-server.ts and what it imports (only that) with tsc into DIST. */
function buildGateway(): string {
  const entry = `${DIST}/bench/gateway-server.js`;
  if (process.env.BENCH_SKIP_BUILD === "1" && existsSync(entry)) return entry;
  console.log("building the gateway with tsc (dist/.bench-gateway)...");
  mkdirSync(DIST, { recursive: true });
  writeFileSync(
    `${DIST}/tsconfig.json`,
    JSON.stringify({
      extends: "../../tsconfig.json",
      compilerOptions: { noEmit: false, outDir: ".", rootDir: "../..", sourceMap: false },
      files: ["../../bench/gateway-server.ts"],
      include: [],
    }),
  );
  execFileSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, "-p", `${DIST}/tsconfig.json`], {
    cwd: ROOT,
    stdio: "inherit",
  });
  return entry;
}

function startGatewayProcess(
  upstream: string,
): Promise<{ child: ChildProcess; grpcPort: number; httpPort: number; ownPort: number }> {
  const underTsx = process.env.BENCH_GATEWAY_RUNTIME === "tsx";
  // BENCH_GATEWAY_ENTRY runs another compiled gateway-server.js (an A/B against another build).
  const entry = underTsx
    ? ["--import", "tsx", fileURLToPath(new URL("./gateway-server.ts", import.meta.url))]
    : [process.env.BENCH_GATEWAY_ENTRY ?? buildGateway()];
  // BENCH_GATEWAY_NODE_ARGS adds flags (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) for profiling.
  const extra = (process.env.BENCH_GATEWAY_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const child = spawn(process.execPath, [...extra, ...PRODUCTION_NODE_FLAGS, ...entry], {
    env: { ...process.env, AGENT_MANAGER_ADDR: upstream },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`gateway process exited with ${code}`)));
    // The ports line is the one starting with {"grpcPort"; anything else (e.g. --trace-gc) passes.
    let ready = false;
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!ready && line.startsWith('{"grpcPort"')) {
        ready = true;
        resolve({
          child,
          ...(JSON.parse(line) as { grpcPort: number; httpPort: number; ownPort: number }),
        });
      } else process.stderr.write(`[gateway] ${line}\n`);
    });
  });
}

/** CPU time (user + system) a process has used so far, ms (Linux /proc/<pid>/stat). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
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
  const authz = new GrpcClient(`127.0.0.1:${gw.ownPort}`, credentials.createInsecure());
  try {
    const d = await measure("direct gRPC", () => direct.getRun({ runId: "r1" }));
    const pid = gw.child.pid;
    const g = await measure("gateway gRPC", () => viaGateway.getRun({ runId: "r1" }, { headers }), pid);
    const url = `http://127.0.0.1:${gw.httpPort}/v1/runs/r1`;
    // REST as a Node service would call it: node:http over kept-alive connections. fetch (undici)
    // is measured too, as a figure only: its own per-request cost in this process, which also
    // plays client and upstream on the same 2 cores, is a large part of what it shows.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const r = await measure("gateway REST", () => httpGet(url, headers, agent), pid);
    const f = await measure(
      "REST via fetch",
      async () => {
        const res = await fetch(url, { headers });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`status ${res.status}`);
      },
      pid,
    );
    agent.destroy();
    const checkRequest = envoyCheckRequest();
    const c = await measure("ext_authz Check", () => check(authz, checkRequest), pid);
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
      rest_fetch_p50_ms: round(f.p50),
      rest_fetch_p99_ms: round(f.p99),
      added_p50_ms: round(g.p50 - d.p50),
      added_p99_ms: round(g.p99 - d.p99),
      grpc_vs_direct_p50_ratio: round(g.p50 / d.p50),
      rest_vs_grpc_p50_ratio: round(r.p50 / g.p50),
      rest_vs_grpc_p99_ratio: round(r.p99 / g.p99),
      rest_fetch_vs_grpc_p50_ratio: round(f.p50 / g.p50),
      direct_achieved_rps: round(d.achievedRps),
      gateway_grpc_achieved_rps: round(g.achievedRps),
      gateway_rest_achieved_rps: round(r.achievedRps),
      errors: d.errors + g.errors + r.errors + f.errors + c.errors,
      gateway_grpc_cpu_us_per_call: round(g.gatewayCpuUsPerCall),
      gateway_rest_cpu_us_per_call: round(r.gatewayCpuUsPerCall),
      ext_authz_check_serial_p50_ms: round(c.serialP50),
      ext_authz_check_p50_ms: round(c.p50),
      ext_authz_check_p99_ms: round(c.p99),
      ext_authz_check_achieved_rps: round(c.achievedRps),
      ext_authz_cpu_us_per_check: round(c.gatewayCpuUsPerCall),
      ext_authz_vs_gateway_grpc_cpu_ratio: round(c.gatewayCpuUsPerCall / g.gatewayCpuUsPerCall),
      other_processes_cpu_cores_max: round(Math.max(d.otherCpu, g.otherCpu, r.otherCpu)),
      gateway_peak_rss_mib: round(peakRssMiB(gw.child.pid!)),
    };
    for (const [k, v] of Object.entries(figures)) console.log(`${k}: ${v}`);
    return figures;
  } finally {
    authz.close();
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

/** What Envoy's ext_authz filter sends for `GET /v1/runs/r1` once transcoded: path, headers, framed body. */
function envoyCheckRequest(): Buffer {
  const payload = toBinary(GetRunRequestSchema, create(GetRunRequestSchema, { runId: "r1" }));
  const body = Buffer.alloc(5 + payload.length);
  body.writeUInt32BE(payload.length, 1);
  body.set(payload, 5);
  const path = "/codex.agentmanager.v1.AgentManagerService/GetRun";
  return Buffer.from(
    toBinary(
      CheckRequestSchema,
      create(CheckRequestSchema, {
        attributes: {
          request: {
            http: {
              id: "1",
              method: "POST",
              path,
              host: "api.codex.dev",
              protocol: "HTTP/2",
              headers: {
                ":path": path,
                ":method": "POST",
                ":authority": "api.codex.dev",
                "content-type": "application/grpc",
                authorization: AUTH,
                "x-request-id": "bench-check",
              },
              rawBody: body,
            },
          },
        },
      }),
    ),
  );
}

/** One Check with pre-encoded bytes; rejects unless Envoy would let the request through. */
function check(client: GrpcClient, request: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      "/envoy.service.auth.v3.Authorization/Check",
      (b: Buffer) => b,
      (b: Buffer) => fromBinary(CheckResponseSchema, b),
      request,
      (err, res) => {
        if (err) reject(err);
        else if ((res?.status?.code ?? 0) !== 0) reject(new Error(`Check refused: ${res?.status?.message}`));
        else resolve();
      },
    );
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await runGatewayBench();
  process.exit(0);
}
