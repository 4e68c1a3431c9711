/**
 * The whole control plane as separate OS processes, the way it runs in production: one process
 * per service (from TypeScript through tsx, or from a tsc build), free ports, a schema per
 * service, one NATS subject prefix and Redis key prefix per stack, and a mesh secret of its
 * own. Used by the end-to-end tests and by the dispatch benchmark; cleans up after itself.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connectNats } from "../../mesh/nats/connection.js";
import { createRedis } from "../../mesh/redis.js";
import { checkHealth } from "../support/grpc-probes.js";
import { deleteTestStreams, dropTestSchema, NATS_URL, REDIS_URL, uniqueName } from "../support/harness.js";
import { freePort } from "../support/ports.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const ALL_SERVICES = [
  "project",
  "workitem",
  "scheduler",
  "agent-manager",
  "notification",
  "audit",
  "gateway",
];
export const JWT = { issuer: "codex-e2e", audience: "codex" };

export interface StackOptions {
  services?: string[];
  /** "tsx": run the TypeScript sources; a directory: run `<dir>/services/<name>/main.js` (tsc output). */
  runner?: "tsx" | { distDir: string };
  /** Extra environment per service name (or "*" for all). */
  env?: Record<string, Record<string, string>>;
}

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  address: string;
  /** Last lines of its output, for failure messages. */
  tail: string[];
}

/** Peak resident set (VmHWM) of a live process, bytes; undefined once it is gone. */
export function peakRss(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a live process has used, seconds; undefined once it is gone. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

export class ProcessStack {
  readonly prefix = uniqueName("e2e");
  readonly meshSecret = randomBytes(32).toString("base64url");
  readonly jwtSecret = randomBytes(32).toString("base64url");
  readonly processes = new Map<string, ServiceProcess>();
  readonly ports = new Map<string, number>();
  gatewayGrpc = "";
  readonly #schemas: string[] = [];

  constructor(private readonly opts: StackOptions = {}) {}

  get names(): string[] {
    return this.opts.services ?? ALL_SERVICES;
  }

  address(name: string): string {
    return `127.0.0.1:${this.ports.get(name)}`;
  }

  async start(): Promise<this> {
    for (const name of this.names) this.ports.set(name, await freePort());
    const gatewayFront = await freePort();
    this.gatewayGrpc = `127.0.0.1:${gatewayFront}`;
    const addresses = Object.fromEntries(
      this.names.map((n) => [`${n.toUpperCase().replaceAll("-", "_")}_ADDR`, this.address(n)]),
    );
    for (const name of this.names) {
      const schema = `${this.prefix}_${name.replaceAll("-", "_")}`;
      this.#schemas.push(schema);
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        MESH_SECRET: this.meshSecret,
        PORT: String(this.ports.get(name)),
        METRICS_PORT: "0",
        LOG_LEVEL: "warn",
        DB_SCHEMA: schema,
        NATS_SUBJECT_PREFIX: this.prefix,
        GRACE_MS: "3000",
        FORCE_MS: "8000",
        ...addresses,
        ...this.#serviceEnv(name, gatewayFront),
        ...this.opts.env?.["*"],
        ...this.opts.env?.[name],
      };
      this.processes.set(name, this.#spawn(name, env));
    }
    try {
      await Promise.all(this.names.map((n) => this.#waitServing(n)));
    } catch (err) {
      // One service failed to start: stop the others rather than leave them running.
      await this.stop();
      throw err;
    }
    return this;
  }

  /** Peak RSS (VmHWM) per service process, bytes. */
  peakRss(): Record<string, number | undefined> {
    return Object.fromEntries([...this.processes].map(([n, p]) => [n, peakRss(p.child.pid)]));
  }

  /** CPU seconds used so far per service process. */
  cpuSeconds(): Record<string, number | undefined> {
    return Object.fromEntries([...this.processes].map(([n, p]) => [n, cpuSeconds(p.child.pid)]));
  }

  /** SIGTERM to every service, SIGKILL after `forceMs`; then drops schemas, streams and keys. */
  async stop(forceMs = 10_000): Promise<void> {
    await Promise.all([...this.processes.values()].map((p) => stopProcess(p.child, forceMs)));
    await Promise.allSettled(this.#schemas.map((s) => dropTestSchema(s)));
    await deleteTestStreams(this.prefix).catch(() => undefined);
    const nc = await connectNats({ servers: NATS_URL, name: `${this.prefix}-cleanup` });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(`OBJ_${this.prefix}_artifacts`).catch(() => false);
    await nc.close();
    const redis = createRedis(REDIS_URL);
    const keys = await redis.keys(`${this.prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }

  #serviceEnv(name: string, gatewayFront: number): Record<string, string> {
    switch (name) {
      case "agent-manager":
        return {
          AGENT_MANAGER_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
          AGENT_MANAGER_REDIS_PREFIX: `${this.prefix}:am:`,
        };
      case "notification":
        return { NOTIFICATION_ENCRYPTION_KEY: randomBytes(32).toString("base64") };
      case "scheduler":
        return { REDIS_KEY_PREFIX: `${this.prefix}:scheduler:`, IDLE_POLL: "100ms" };
      case "gateway":
        return {
          GATEWAY_GRPC_PORT: String(gatewayFront),
          GATEWAY_HTTP_PORT: "0",
          JWT_ISSUER: JWT.issuer,
          JWT_AUDIENCE: JWT.audience,
          JWT_HS256_SECRET: this.jwtSecret,
          RATE_LIMIT_KEY_PREFIX: `${this.prefix}:rl:`,
          RATE_LIMIT_DISABLED: "true",
          AUTH_MEMBERSHIP_CACHE_TTL: "0s",
        };
      default:
        return {};
    }
  }

  #spawn(name: string, env: Record<string, string>): ServiceProcess {
    const runner = this.opts.runner ?? "tsx";
    // STACK_NODE_ARGS: extra node flags not allowed in NODE_OPTIONS (e.g. --cpu-prof for profiling).
    const extra = (process.env.STACK_NODE_ARGS ?? "").split(" ").filter(Boolean);
    const args =
      runner === "tsx"
        ? [...extra, "--import", "tsx", `${ROOT}services/${name}/main.ts`]
        : [...extra, `${runner.distDir}/services/${name}/main.js`];
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    const p: ServiceProcess = { name, child, address: env.PORT ? `127.0.0.1:${env.PORT}` : "", tail: [] };
    const keep = (b: Buffer) => {
      p.tail.push(...b.toString().split("\n").filter(Boolean));
      if (p.tail.length > 40) p.tail.splice(0, p.tail.length - 40);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    // STACK_LOG_DIR: every line each service prints, in <dir>/<service>.log (for debugging).
    if (process.env.STACK_LOG_DIR) {
      const file = createWriteStream(`${process.env.STACK_LOG_DIR}/${name}.log`);
      child.stdout?.pipe(file);
      child.stderr?.pipe(file);
    }
    return p;
  }

  async #waitServing(name: string, timeoutMs = 60_000): Promise<void> {
    const p = this.processes.get(name)!;
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (p.child.exitCode !== null) {
        throw new Error(`${name} exited with ${p.child.exitCode}:\n${p.tail.join("\n")}`);
      }
      if ((await checkHealth(p.address).catch(() => "")) === "SERVING") return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${name} not SERVING after ${timeoutMs} ms:\n${p.tail.join("\n")}`);
  }
}

/** SIGTERM, then SIGKILL after `forceMs`; resolves when the process is gone. */
export function stopProcess(
  child: ChildProcess,
  forceMs: number,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), forceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}
