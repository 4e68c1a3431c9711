/**
 * codex-agent as a real process (tsx agent/main.ts) against a scripted manager: recipe steps
 * with their output, exit codes, title inference refusal, cancellation stopping the step's
 * processes, and a clean exit on SIGTERM.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../gen/codex/agentmanager/v1/run_pb.js";
import { FakeAgentManager } from "../sdk/testing/fake-agent-manager.js";
import { processAlive } from "./process-group.js";

let fake: FakeAgentManager;
let agent: ChildProcess;
let dir: string;
let output = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "codex-agent-cli-"));
  fake = await new FakeAgentManager({ heartbeatMs: 100 }).start();
  agent = spawn(
    process.execPath,
    ["--import", "tsx", "agent/main.ts", "--address", fake.address, "--name", "cli-test", "--capacity", "2"],
    {
      env: {
        PATH: process.env.PATH,
        CODEX_AGENT_WORK_DIR: join(dir, "work"),
        CODEX_AGENT_KILL_GRACE: "500ms",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  agent.stdout?.on("data", (b: Buffer) => {
    output += b.toString();
  });
  agent.stderr?.on("data", (b: Buffer) => {
    output += b.toString();
  });
  await fake.waitForKind("heartbeat", undefined, 20_000);
});

afterAll(async () => {
  if (agent.exitCode === null) agent.kill("SIGKILL");
  await fake.stop();
  await rm(dir, { recursive: true, force: true });
});

const completion = async (runId: string, timeoutMs = 10_000) =>
  (await fake.waitForKind("complete", runId, timeoutMs)).msg.message.value as {
    status: RunState;
    exitCode?: number;
    error: string;
  };

const logLines = (runId: string) =>
  fake
    .messages("logs")
    .filter((l) => l.value.runId === runId)
    .flatMap((l) => l.value.chunks.map((c) => Buffer.from(c.data).toString()))
    .join("");

describe("codex-agent", () => {
  it("runs recipe steps in order, streaming stdout and stderr, and succeeds", async () => {
    fake.assign("ok", {
      workItem: {
        workItemId: "wi-ok",
        title: "build",
        recipe: {
          steps: [
            { run: 'echo "compiling $STAGE"', env: { STAGE: "one" } },
            { run: "echo warn >&2; mkdir out" },
            { run: "ls", cwd: "" },
          ],
        },
      },
    });
    const c = await completion("ok");
    expect(c).toMatchObject({ status: RunState.SUCCEEDED, exitCode: 0 });
    const logs = logLines("ok");
    expect(logs).toContain("compiling one\n");
    expect(logs).toContain("warn\n");
    expect(logs).toContain("out\n");
    expect(
      fake
        .messages("runStatus")
        .filter((s) => s.value.runId === "ok")
        .map((s) => s.value.currentStep),
    ).toEqual([0, 0, 1, 2]);
  });

  it("fails the run at the first failing step with its exit code", async () => {
    fake.assign("bad", {
      workItem: { title: "test", recipe: { steps: [{ run: "exit 4" }, { run: "echo never" }] } },
    });
    const c = await completion("bad");
    expect(c).toMatchObject({ status: RunState.FAILED, exitCode: 4 });
    expect(c.error).toContain("step 0 (exit 4) exited with 4");
    expect(logLines("bad")).not.toContain("never");
  });

  it("refuses a run without recipe whose title names no step, saying why", async () => {
    fake.assign("vague", { workItem: { title: "Refactor the parser" } });
    const c = await completion("vague");
    expect(c.status).toBe(RunState.FAILED);
    expect(c.error).toMatch(/has no recipe and its title names no known step/);
  });

  it("stops the step's processes when the run is cancelled and completes CANCELLED", async () => {
    const pidFile = join(dir, "cancel.pid");
    fake.assign("cancel-me", {
      workItem: {
        title: "deploy",
        recipe: { steps: [{ run: `sh -c 'echo $$ > ${pidFile}; exec sleep 600'` }] },
      },
    });
    let pid = 0;
    await expect
      .poll(async () => (pid = Number((await readFile(pidFile, "utf8").catch(() => "")).trim())), {
        timeout: 10_000,
      })
      .toBeGreaterThan(0);
    expect(processAlive(pid)).toBe(true);
    fake.cancel("cancel-me");
    const c = await completion("cancel-me");
    expect(c.status).toBe(RunState.CANCELLED);
    expect(processAlive(pid)).toBe(false);
  });

  it("exits 0 on SIGTERM after closing its stream", async () => {
    const exited = new Promise<number | null>((r) => agent.once("exit", (code) => r(code)));
    agent.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(output).toContain("agent worker STOPPED");
  });
});
