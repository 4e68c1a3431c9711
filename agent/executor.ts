/**
 * The codex-agent's assignment handler: plan the steps (recipe or title), give the run a fresh
 * workspace, run the steps in order reporting each one, stream their output, stop at the first
 * failure, and remove the workspace afterwards. Outcomes follow the SDK's rules: a returned
 * exit code completes SUCCEEDED, a RunFailure completes FAILED with its exit code, and a
 * cancelled run completes CANCELLED (its step's process group has been stopped by then).
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { type AssignmentHandler, RunFailure } from "../sdk/index.js";
import { runStep, type StepSpec } from "./step-runner.js";
import { planSteps } from "./steps.js";

export interface ExecutorOptions {
  workDir: string;
  keepWorkspaces: boolean;
  shell: string;
  baseEnv: Record<string, string>;
  killGraceMs: number;
  defaultTimeoutMs: number;
  titleSteps: Readonly<Record<string, readonly string[]>>;
  /** Observes each step's pid (tests). */
  onStepSpawn?(runId: string, index: number, pid: number): void;
}

export function createExecutor(o: ExecutorOptions): AssignmentHandler {
  return async (run, ctx) => {
    const plan = planSteps(run.workItem, { titleSteps: o.titleSteps, defaultTimeoutMs: o.defaultTimeoutMs });
    if ("error" in plan) {
      ctx.log("system", plan.error);
      throw new RunFailure(plan.error);
    }
    const workspace = join(o.workDir, run.runId.replace(/[^A-Za-z0-9._-]/g, "_"));
    await rm(workspace, { recursive: true, force: true });
    await mkdir(workspace, { recursive: true });
    ctx.log("system", `${plan.steps.length} step(s) from ${plan.source} in ${workspace}`);
    try {
      let exitCode = 0;
      for (const [index, step] of plan.steps.entries()) {
        ctx.setStep(index);
        exitCode = await runOne(index, step, workspace, run, ctx, o);
      }
      return { exitCode };
    } finally {
      if (!o.keepWorkspaces) await rm(workspace, { recursive: true, force: true });
    }
  };
}

async function runOne(
  index: number,
  step: StepSpec,
  workspace: string,
  run: Parameters<AssignmentHandler>[0],
  ctx: Parameters<AssignmentHandler>[1],
  o: ExecutorOptions,
): Promise<number> {
  ctx.log("system", `$ ${step.run}`);
  const env = {
    ...o.baseEnv,
    CODEX_RUN_ID: run.runId,
    CODEX_WORK_ITEM_ID: run.workItem.workItemId,
    CODEX_PROJECT_ID: run.workItem.projectId,
    CODEX_ENVIRONMENT: run.workItem.environment,
    CODEX_STEP_INDEX: String(index),
    CODEX_WORKSPACE: workspace,
  };
  let outcome: Awaited<ReturnType<typeof runStep>>;
  try {
    outcome = await runStep(step, {
      workspace,
      shell: o.shell,
      baseEnv: env,
      killGraceMs: o.killGraceMs,
      signal: ctx.signal,
      onLine: (stream, line) => ctx.log(stream, line),
      onSpawn: (pid) => o.onStepSpawn?.(run.runId, index, pid),
    });
  } catch (err) {
    const message = `step ${index} could not start: ${(err as Error).message}`;
    ctx.log("system", message);
    throw new RunFailure(message);
  }
  const took = `${(outcome.durationMs / 1000).toFixed(1)}s`;
  if (outcome.aborted) {
    const message = `step ${index} stopped (${String(ctx.signal.reason?.message ?? "cancelled")}) after ${took}`;
    ctx.log("system", message);
    throw new RunFailure(message, outcome.exitCode);
  }
  if (outcome.timedOut) {
    const message = `step ${index} timed out after ${step.timeoutMs} ms; its processes were stopped`;
    ctx.log("system", message);
    throw new RunFailure(message, outcome.exitCode);
  }
  ctx.log("system", `step ${index} exited with ${outcome.exitCode} after ${took}`);
  if (outcome.exitCode !== 0) {
    throw new RunFailure(`step ${index} (${step.run}) exited with ${outcome.exitCode}`, outcome.exitCode);
  }
  return outcome.exitCode;
}
