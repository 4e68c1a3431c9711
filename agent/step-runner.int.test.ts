/** Real shells and process groups: output, exit codes, timeouts and cancellation. */
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processAlive } from "./process-group.js";
import { runStep, type StepRunOptions } from "./step-runner.js";

let workspace: string;
beforeAll(async () => {
  workspace = await mkdtemp(join(tmpdir(), "step-runner-"));
});
afterAll(() => rm(workspace, { recursive: true, force: true }));

function options(lines: string[], extra: Partial<StepRunOptions> = {}): StepRunOptions {
  return {
    workspace,
    shell: "/bin/sh",
    baseEnv: { PATH: "/usr/bin:/bin" },
    killGraceMs: 500,
    signal: new AbortController().signal,
    onLine: (stream, line) => lines.push(`${stream}:${line}`),
    ...extra,
  };
}

const step = (run: string, timeoutMs = 10_000, cwd = "", env: Record<string, string> = {}) => ({
  run,
  env,
  cwd,
  timeoutMs,
});

async function waitForPid(file: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const text = await readFile(file, "utf8").catch(() => "");
    if (text.trim() !== "") return Number(text.trim());
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no pid in ${file}`);
}

describe("runStep", () => {
  it("streams stdout and stderr lines with the step's env and cwd, and reports the exit code", async () => {
    await mkdir(join(workspace, "sub"), { recursive: true });
    const lines: string[] = [];
    const out = await runStep(
      step('echo "out $GREETING"; echo "err line" >&2; pwd; exit 3', 10_000, "sub", { GREETING: "hello" }),
      options(lines),
    );
    expect(out).toMatchObject({ exitCode: 3, timedOut: false, aborted: false, signal: null });
    expect(lines).toContain("stdout:out hello");
    expect(lines).toContain("stderr:err line");
    expect(lines).toContain(`stdout:${join(workspace, "sub")}`);
  });

  it("kills the whole process group on timeout, sleeping grandchild included", async () => {
    const pidFile = join(workspace, "grandchild.pid");
    const lines: string[] = [];
    const started = Date.now();
    const outcome = runStep(step(`sh -c 'echo $$ > ${pidFile}; exec sleep 600' & wait`, 400), options(lines));
    const grandchild = await waitForPid(pidFile);
    expect(processAlive(grandchild)).toBe(true);
    const out = await outcome;
    expect(out.timedOut).toBe(true);
    expect(out.exitCode).toBe(143);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(processAlive(grandchild)).toBe(false);
  });

  it("escalates to SIGKILL for a group that ignores SIGTERM", async () => {
    const pidFile = join(workspace, "stubborn.pid");
    const out = runStep(
      step(
        `trap '' TERM; sh -c 'trap "" TERM; echo $$ > ${pidFile}; while :; do sleep 0.05; done' & wait`,
        300,
      ),
      options([], { killGraceMs: 300 }),
    );
    const grandchild = await waitForPid(pidFile);
    const res = await out;
    expect(res.timedOut).toBe(true);
    expect(res.exitCode).toBe(137);
    expect(processAlive(grandchild)).toBe(false);
  });

  it("stops the group when the run is cancelled", async () => {
    const pidFile = join(workspace, "cancel.pid");
    const abort = new AbortController();
    const out = runStep(
      step(`sh -c 'echo $$ > ${pidFile}; exec sleep 600'; echo unreachable`),
      options([], { signal: abort.signal }),
    );
    const grandchild = await waitForPid(pidFile);
    abort.abort(new Error("cancelled by test"));
    const res = await out;
    expect(res.aborted).toBe(true);
    expect(res.timedOut).toBe(false);
    expect(processAlive(grandchild)).toBe(false);
  });

  it("stops background processes a successful step leaves behind", async () => {
    const pidFile = join(workspace, "leftover.pid");
    const res = await runStep(
      step(`sh -c 'echo $$ > ${pidFile}; exec sleep 600' > /dev/null 2>&1 & sleep 0.2; echo done`),
      options([]),
    );
    expect(res.exitCode).toBe(0);
    expect(processAlive(await waitForPid(pidFile))).toBe(false);
  });

  it("refuses a cwd outside the workspace or missing, before starting anything", async () => {
    await expect(runStep(step("true", 1_000, "../elsewhere"), options([]))).rejects.toThrow(
      /leaves the run's workspace/,
    );
    await expect(runStep(step("true", 1_000, "nope"), options([]))).rejects.toThrow(/does not exist/);
  });
});
