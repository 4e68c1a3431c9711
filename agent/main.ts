#!/usr/bin/env node
/**
 * codex-agent: the reference agent. Registers with the control plane, runs each assignment's
 * recipe steps in a shell (see executor.ts), and stops gracefully on SIGTERM/SIGINT.
 * Wiring only; settings in config.ts.
 */
import { ConfigError } from "../mesh/config.js";
import { createLogger } from "../mesh/logging.js";
import { AgentWorker, handleSignals } from "../sdk/index.js";
import { type AgentConfig, loadAgentConfig, USAGE } from "./config.js";
import { createExecutor } from "./executor.js";

export const AGENT_VERSION = "0.1.0";

function connection(cfg: AgentConfig) {
  const c: ConstructorParameters<typeof AgentWorker>[0]["connection"] = {
    address: cfg.CODEX_AGENT_ADDRESS.split(","),
  };
  if (cfg.CODEX_AGENT_ARTIFACT_ADDRESS) c.artifactAddress = cfg.CODEX_AGENT_ARTIFACT_ADDRESS.split(",");
  if (cfg.CODEX_AGENT_API_KEY) c.credentials = { apiKey: cfg.CODEX_AGENT_API_KEY };
  else if (cfg.CODEX_AGENT_TOKEN) c.credentials = { bearerToken: cfg.CODEX_AGENT_TOKEN };
  if (cfg.CODEX_AGENT_MESH_SECRET) c.meshSecret = cfg.CODEX_AGENT_MESH_SECRET;
  return c;
}

async function main(): Promise<void> {
  let cfg: AgentConfig | "help";
  try {
    cfg = loadAgentConfig(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof ConfigError || err instanceof Error ? err.message : String(err));
    console.error(USAGE);
    process.exit(2);
  }
  if (cfg === "help") {
    console.log(USAGE);
    return;
  }
  const logger = createLogger({
    service: "codex-agent",
    level: cfg.CODEX_AGENT_LOG_LEVEL,
    version: AGENT_VERSION,
  });
  const worker = new AgentWorker({
    connection: connection(cfg),
    agent: {
      name: cfg.CODEX_AGENT_NAME,
      labels: Object.fromEntries(
        cfg.CODEX_AGENT_LABELS.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
      ),
      capabilities: cfg.CODEX_AGENT_CAPABILITIES.map((c) => {
        const [name = c, version] = c.split("@");
        return version ? { name, versions: [version] } : { name };
      }),
      capacity: cfg.CODEX_AGENT_CAPACITY,
      region: cfg.CODEX_AGENT_REGION,
      version: AGENT_VERSION,
    },
    handler: createExecutor({
      workDir: cfg.CODEX_AGENT_WORK_DIR,
      keepWorkspaces: cfg.CODEX_AGENT_KEEP_WORKSPACES,
      shell: cfg.CODEX_AGENT_SHELL,
      baseEnv: cfg.stepBaseEnv,
      killGraceMs: cfg.CODEX_AGENT_KILL_GRACE,
      defaultTimeoutMs: cfg.CODEX_AGENT_STEP_TIMEOUT,
      titleSteps: cfg.titleSteps,
    }),
    shutdown: { graceMs: cfg.CODEX_AGENT_GRACE, forceMs: cfg.CODEX_AGENT_FORCE },
    reconnect: { maxAttempts: cfg.CODEX_AGENT_RECONNECT_ATTEMPTS, baseMs: 250, capMs: 15_000 },
    logger,
  });
  handleSignals(worker, { forceMs: cfg.CODEX_AGENT_FORCE, logger });
  try {
    await worker.start();
  } catch (err) {
    logger.error({ err }, "codex-agent could not connect");
    process.exit(1);
  }
  logger.info({ agentId: worker.agentId, name: cfg.CODEX_AGENT_NAME }, "codex-agent ready");
  const final = await worker.done;
  process.exit(final === "STOPPED" ? 0 : 1);
}

await main();
