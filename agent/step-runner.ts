/**
 * Runs one recipe step: `<shell> -c <run>` in the step's directory inside the run's workspace,
 * with its environment, as the leader of its own process group, streaming stdout and stderr
 * line by line. On timeout or cancellation the whole group is stopped (process-group.ts); when
 * the shell exits on its own, members it left running in the background are stopped too, so a
 * step never outlives itself.
 */
import { spawn } from "node:child_process";
import { stat } from "node:fs/promises";
import { constants } from "node:os";
import { isAbsolute, relative, resolve } from "node:path";
import { LineSplitter } from "./line-splitter.js";
import { killGroup } from "./process-group.js";

export interface StepSpec {
  /** Shell command. */
  run: string;
  env: Record<string, string>;
  /** Relative to the workspace; "" is the workspace itself. */
  cwd: string;
  timeoutMs: number;
}

export interface StepRunOptions {
  workspace: string;
  shell: string;
  /** Environment every step starts from (the step's own env is laid over it). */
  baseEnv: Record<string, string>;
  killGraceMs: number;
  signal: AbortSignal;
  onLine(stream: "stdout" | "stderr", line: string): void;
  /** Called with the step's pid (= its process group id) once spawned. */
  onSpawn?(pid: number): void;
}

export interface StepOutcome {
  /** Exit code, or 128 + signal number when the shell was killed by a signal. */
  exitCode: number;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** The run's signal aborted while the step ran. */
  aborted: boolean;
  durationMs: number;
}

/** Resolves a step's cwd inside the workspace; throws a clear error when it leaves it or is missing. */
export async function stepDirectory(workspace: string, cwd: string): Promise<string> {
  const dir = resolve(workspace, cwd);
  const rel = relative(workspace, dir);
  if (rel.startsWith("..") || isAbsolute(rel)) throw new Error(`cwd "${cwd}" leaves the run's workspace`);
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new Error(`cwd "${cwd}" does not exist in the run's workspace`);
  return dir;
}

export async function runStep(step: StepSpec, o: StepRunOptions): Promise<StepOutcome> {
  const cwd = await stepDirectory(o.workspace, step.cwd);
  const started = Date.now();
  const child = spawn(o.shell, ["-c", step.run], {
    cwd,
    env: { ...o.baseEnv, ...step.env },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res, rej) => {
    child.once("error", rej);
    child.once("exit", (code, signal) => res({ code, signal }));
  });
  const closed = new Promise<void>((res) => child.once("close", () => res()));
  const pid = child.pid;
  if (pid === undefined) {
    await exited; // rejects with the spawn error (e.g. shell not found)
    throw new Error(`could not start ${o.shell}`);
  }
  o.onSpawn?.(pid);
  const out = new LineSplitter((line) => o.onLine("stdout", line));
  const err = new LineSplitter((line) => o.onLine("stderr", line));
  child.stdout.on("data", (b: Buffer) => out.push(b));
  child.stderr.on("data", (b: Buffer) => err.push(b));

  let timedOut = false;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= killGroup(pid, o.killGraceMs);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    stop();
  }, step.timeoutMs);
  const onAbort = () => stop();
  o.signal.addEventListener("abort", onAbort, { once: true });
  if (o.signal.aborted) stop();
  try {
    const { code, signal } = await exited;
    clearTimeout(timer);
    // Background members the shell left behind hold the pipes open; they end with the step.
    stop();
    await stopping;
    await Promise.race([closed, new Promise((r) => setTimeout(r, o.killGraceMs))]);
    out.end();
    err.end();
    return {
      exitCode: code ?? 128 + signalNumber(signal),
      signal,
      timedOut,
      aborted: o.signal.aborted,
      durationMs: Date.now() - started,
    };
  } finally {
    clearTimeout(timer);
    o.signal.removeEventListener("abort", onAbort);
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (constants.signals[signal] ?? 0) : 0;
}
