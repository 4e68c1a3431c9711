/**
 * Stopping a step means stopping everything it started: the step runs as the leader of its own
 * process group (spawned detached), so signalling the negative pid reaches the shell and every
 * descendant that did not leave the group — `npm test` spawning node spawning workers included.
 * SIGTERM first so tools can clean up, SIGKILL after the grace time for whatever ignored it.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";

/**
 * Whether any live process of the group still exists. On Linux /proc is read, because a
 * member that exited but was not reaped (a zombie, common where PID 1 does not reap orphans,
 * as in many containers) still answers signal 0 though it runs nothing.
 */
export function groupAlive(pgid: number): boolean {
  if (existsSync("/proc/self/stat")) return liveMembers(pgid).length > 0;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else (cannot happen for our own children).
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Pids of the group's members that are not zombies (Linux). */
export function liveMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") out.push(Number(entry));
  }
  return out;
}

/** Whether process `pid` exists and is not a zombie. */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * SIGTERM to the group, then SIGKILL if any member is left after `graceMs`. Resolves once the
 * group is gone (or `graceMs` after the SIGKILL, for processes stuck in uninterruptible sleep).
 */
export async function killGroup(pgid: number, graceMs: number): Promise<void> {
  if (!groupAlive(pgid)) return;
  signalGroup(pgid, "SIGTERM");
  if (await waitGone(pgid, graceMs)) return;
  signalGroup(pgid, "SIGKILL");
  await waitGone(pgid, graceMs);
}

async function waitGone(pgid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!groupAlive(pgid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !groupAlive(pgid);
}
