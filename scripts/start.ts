/**
 * Runs the whole system locally: every service under services/ that has a main.ts, each as its
 * own process, wired to each other by address, with one freshly generated mesh secret.
 * Ctrl-C stops them all gracefully (SIGTERM, then their own grace/force times).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * One name everywhere: folder, process, schema; the port is its gRPC port. The gateway's own
 * services (API keys, identity) listen on 50049; its front doors on 50050 (gRPC) and 8080 (REST).
 */
export const SERVICE_PORTS: Record<string, number> = {
  gateway: 50049,
  project: 50051,
  workitem: 50052,
  scheduler: 50053,
  "agent-manager": 50054,
  notification: 50055,
  audit: 50056,
};

/** `<NAME>_ADDR` variables every service reads to reach the others. */
export function addressEnv(host = "127.0.0.1"): Record<string, string> {
  return Object.fromEntries(
    Object.entries(SERVICE_PORTS).map(([name, port]) => [
      `${name.toUpperCase().replaceAll("-", "_")}_ADDR`,
      `${host}:${port}`,
    ]),
  );
}

const root = fileURLToPath(new URL("..", import.meta.url)).replace(/\/dist\/$/, "/");

/**
 * Local development secrets, generated once into .codex-dev/ (git-ignored) so encrypted data
 * stays readable across restarts. Production takes every one of these from its secret store.
 */
export function devSecrets(dir = `${root}.codex-dev`): Record<string, string> {
  const file = `${dir}/secrets.json`;
  if (existsSync(file)) return JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
  const secrets = {
    MESH_SECRET: randomBytes(32).toString("base64url"),
    NOTIFICATION_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    AGENT_MANAGER_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    JWT_HS256_SECRET: randomBytes(32).toString("base64url"),
  };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

/** Development JWT settings: HS256 tokens minted by `scripts/dev-token.ts`. */
export const DEV_JWT = { JWT_ISSUER: "codex-dev", JWT_AUDIENCE: "codex" };

/**
 * Node flags of one service beyond the heap cap. The gateway's garbage is almost all per-call and
 * short-lived, so a young generation capped at 8 MB semi-spaces (V8's default grows to 16) keeps
 * ~15-20 MB of RSS off its peak under load for no measurable CPU; as in its Deployment
 * (istio/base/deployments/gateway.yaml) and bench/gateway.ts.
 */
const EXTRA_NODE_FLAGS: Readonly<Record<string, readonly string[]>> = {
  gateway: ["--max-semi-space-size=8"],
  // Same trade for the agent manager under the dispatch load (bench: 147 -> 134 MB peak RSS).
  "agent-manager": ["--max-semi-space-size=8"],
};

function main(): void {
  const secrets = devSecrets();
  const names = Object.keys(SERVICE_PORTS).filter((n) => existsSync(`${root}/dist/services/${n}/main.js`));
  if (names.length === 0) {
    console.error("no built service found: run `npm run build` first (make up does)");
    process.exit(1);
  }
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  names.forEach((name, i) => {
    // A capped old space keeps each service near its 150 MB budget (V8 otherwise grows lazily).
    const child = spawn(
      process.execPath,
      [
        "--max-old-space-size=112",
        ...(EXTRA_NODE_FLAGS[name] ?? []),
        `${root}/dist/services/${name}/main.js`,
      ],
      {
        stdio: "inherit",
        env: {
          ...secrets,
          ...DEV_JWT,
          ...process.env,
          ...addressEnv(),
          PORT: String(SERVICE_PORTS[name]),
          METRICS_PORT: String(9460 + i),
        },
      },
    );
    children.set(name, child);
    child.on("exit", (code, signal) => {
      children.delete(name);
      if (!stopping) {
        console.error(`${name} exited (${signal ?? code}); stopping the others`);
        stopAll();
      }
      if (children.size === 0) process.exit(stopping ? 0 : 1);
    });
  });
  console.log(`started ${names.join(", ")}; gRPC ports ${names.map((n) => SERVICE_PORTS[n]).join(", ")}`);
  if (names.includes("gateway")) {
    console.log(
      "front door: gRPC 127.0.0.1:50050, REST http://127.0.0.1:8080 — token: npx tsx scripts/dev-token.ts <user>",
    );
  }
  const stopAll = () => {
    stopping = true;
    for (const child of children.values()) child.kill("SIGTERM");
  };
  process.on("SIGINT", stopAll);
  process.on("SIGTERM", stopAll);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
