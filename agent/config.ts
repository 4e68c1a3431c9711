/**
 * codex-agent settings: command-line flags override environment variables, both checked once
 * here (the only file of the agent reading process.env). A bad value stops the agent with a
 * message naming the variable.
 */
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { bool, type ConfigOf, durationMs, int, list, loadConfig, oneOf, str } from "../mesh/config.js";
import { DEFAULT_TITLE_STEPS, parseTitleSteps } from "./steps.js";

const defaultName = `codex-agent-${hostname()
  .toLowerCase()
  .replace(/[^a-z0-9.-]/g, "-")}`.slice(0, 63);

export const agentConfigSpec = {
  /** Gateway address host:port (or the agent manager's, with a mesh secret). */
  CODEX_AGENT_ADDRESS: str({ default: "127.0.0.1:50050" }),
  /** WorkItemService address for artifacts; empty = the same address. */
  CODEX_AGENT_ARTIFACT_ADDRESS: str({ default: "" }),
  /** Agent API key (cdx_…) presented to the gateway. */
  CODEX_AGENT_API_KEY: str({ default: "", secret: true }),
  /** Agent JWT presented to the gateway (instead of an API key). */
  CODEX_AGENT_TOKEN: str({ default: "", secret: true }),
  /** Mesh secret, for direct connections to the services (tests, co-located agents). */
  CODEX_AGENT_MESH_SECRET: str({ default: "", secret: true }),
  CODEX_AGENT_NAME: str({ default: defaultName, pattern: /^[a-z0-9.-]{1,63}$/ }),
  /** key=value pairs. */
  CODEX_AGENT_LABELS: list({ default: [], item: /^[^=]+=.*$/ }),
  /** Tools offered: name or name@version. */
  CODEX_AGENT_CAPABILITIES: list({ default: [] }),
  CODEX_AGENT_CAPACITY: int({ min: 1, max: 256, default: 1 }),
  CODEX_AGENT_REGION: str({ default: "" }),
  /** Parent of the per-run workspaces. */
  CODEX_AGENT_WORK_DIR: str({ default: join(tmpdir(), "codex-agent") }),
  /** Keep run workspaces after the run (debugging). */
  CODEX_AGENT_KEEP_WORKSPACES: bool({ default: false }),
  CODEX_AGENT_SHELL: str({ default: "/bin/sh" }),
  /** Step timeout when a recipe step sets none. */
  CODEX_AGENT_STEP_TIMEOUT: durationMs({ default: "30m", min: 1 }),
  /** Time between SIGTERM and SIGKILL when stopping a step's process group. */
  CODEX_AGENT_KILL_GRACE: durationMs({ default: "5s", min: 0 }),
  /** JSON map of title verbs to commands, replacing the defaults (see agent/README.md). */
  CODEX_AGENT_TITLE_STEPS: str({ default: "" }),
  /** Graceful shutdown: time in-flight runs get, then the hard limit. */
  CODEX_AGENT_GRACE: durationMs({ default: "30s", min: 0 }),
  CODEX_AGENT_FORCE: durationMs({ default: "45s", min: 0 }),
  /** Consecutive failed connection attempts before giving up (full-jitter backoff, 250 ms to 15 s). */
  CODEX_AGENT_RECONNECT_ATTEMPTS: int({ min: 1, max: 10_000, default: 30 }),
  CODEX_AGENT_LOG_LEVEL: oneOf(["debug", "info", "warn", "error"] as const, { default: "info" }),
};

export type AgentConfig = ConfigOf<typeof agentConfigSpec> & {
  titleSteps: Record<string, readonly string[]>;
  /** Environment steps start from: a short allow-list, never the agent's own secrets. */
  stepBaseEnv: Record<string, string>;
};

const FLAGS: Record<string, { env: keyof typeof agentConfigSpec; multiple?: boolean; boolean?: boolean }> = {
  address: { env: "CODEX_AGENT_ADDRESS" },
  "artifact-address": { env: "CODEX_AGENT_ARTIFACT_ADDRESS" },
  "api-key": { env: "CODEX_AGENT_API_KEY" },
  token: { env: "CODEX_AGENT_TOKEN" },
  "mesh-secret": { env: "CODEX_AGENT_MESH_SECRET" },
  name: { env: "CODEX_AGENT_NAME" },
  label: { env: "CODEX_AGENT_LABELS", multiple: true },
  capability: { env: "CODEX_AGENT_CAPABILITIES", multiple: true },
  capacity: { env: "CODEX_AGENT_CAPACITY" },
  region: { env: "CODEX_AGENT_REGION" },
  "work-dir": { env: "CODEX_AGENT_WORK_DIR" },
  "keep-workspaces": { env: "CODEX_AGENT_KEEP_WORKSPACES", boolean: true },
  shell: { env: "CODEX_AGENT_SHELL" },
  "step-timeout": { env: "CODEX_AGENT_STEP_TIMEOUT" },
  "kill-grace": { env: "CODEX_AGENT_KILL_GRACE" },
  "title-steps": { env: "CODEX_AGENT_TITLE_STEPS" },
  grace: { env: "CODEX_AGENT_GRACE" },
  force: { env: "CODEX_AGENT_FORCE" },
  "reconnect-attempts": { env: "CODEX_AGENT_RECONNECT_ATTEMPTS" },
  "log-level": { env: "CODEX_AGENT_LOG_LEVEL" },
};

const INHERITED = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "TERM"];

export const USAGE = `usage: codex-agent [flags]   (every flag also has an environment variable)
${Object.entries(FLAGS)
  .map(
    ([flag, f]) =>
      `  --${flag}${f.boolean ? "" : " <value>"}${f.multiple ? " (repeatable)" : ""}`.padEnd(40) + f.env,
  )
  .join("\n")}
  --help`;

/** Parses flags over the environment. Returns "help" when --help was given. */
export function loadAgentConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): AgentConfig | "help" {
  const options = Object.fromEntries(
    Object.entries(FLAGS).map(([flag, f]) => [
      flag,
      { type: f.boolean ? "boolean" : "string", multiple: f.multiple ?? false },
    ]),
  ) as Record<string, { type: "string" | "boolean"; multiple: boolean }>;
  const values = parseArgs({
    args: [...argv],
    options: { ...options, help: { type: "boolean" } },
    strict: true,
  }).values as Record<string, string | boolean | string[] | undefined>;
  if (values.help) return "help";
  const merged: Record<string, string | undefined> = { ...env };
  for (const [flag, f] of Object.entries(FLAGS)) {
    const v = values[flag];
    if (v === undefined) continue;
    merged[f.env] = Array.isArray(v) ? v.join(",") : String(v);
  }
  const cfg = loadConfig(agentConfigSpec, merged);
  const titleSteps =
    cfg.CODEX_AGENT_TITLE_STEPS === "" ? DEFAULT_TITLE_STEPS : parseTitleSteps(cfg.CODEX_AGENT_TITLE_STEPS);
  const stepBaseEnv: Record<string, string> = {};
  for (const k of INHERITED) if (env[k] !== undefined) stepBaseEnv[k] = env[k] as string;
  return { ...cfg, titleSteps, stepBaseEnv };
}
