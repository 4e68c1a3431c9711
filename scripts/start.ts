/**
 * Runs the whole system locally: every service under services/ that has a main.ts, each as its
 * own process, wired to each other by address, with one freshly generated mesh secret.
 * Ctrl-C stops them all gracefully (SIGTERM, then their own grace/force times).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** One name everywhere: folder, process, schema; the port is its gRPC port. */
export const SERVICE_PORTS: Record<string, number> = {
  gateway: 50050,
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

const root = fileURLToPath(new URL("..", import.meta.url));

function main(): void {
  const secret = process.env.MESH_SECRET ?? randomBytes(32).toString("base64url");
  const names = Object.keys(SERVICE_PORTS).filter((n) => existsSync(`${root}/dist/services/${n}/main.js`));
  if (names.length === 0) {
    console.error("no built service found: run `npm run build` first (make up does)");
    process.exit(1);
  }
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  names.forEach((name, i) => {
    const child = spawn(process.execPath, [`${root}/dist/services/${name}/main.js`], {
      stdio: "inherit",
      env: {
        ...process.env,
        ...addressEnv(),
        MESH_SECRET: secret,
        PORT: String(SERVICE_PORTS[name]),
        METRICS_PORT: String(9460 + i),
      },
    });
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
  const stopAll = () => {
    stopping = true;
    for (const child of children.values()) child.kill("SIGTERM");
  };
  process.on("SIGINT", stopAll);
  process.on("SIGTERM", stopAll);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
