/**
 * An agent as the dispatcher sees it: what it may run, what it holds, what is being claimed
 * for it, and where its runs go (its stream, or ClaimRun calls waiting for work).
 */
import type { AgentProfile } from "../domain/matching.js";
import type { PendingNotice } from "../liveness/notifier.js";
import type { RunRow } from "../store/runs.js";

/** Receives the runs leased to an agent (its stream, or a waiting ClaimRun). */
export type Delivery = (row: RunRow) => void;

/** A ClaimRun waiting for runs. */
export interface Waiter {
  remaining: number;
  inflight: number;
  rows: RunRow[];
  done(rows: RunRow[]): void;
}

export interface Slot {
  agentId: string;
  profile: AgentProfile;
  capacity: number;
  held: Set<string>;
  reserved: number;
  draining: boolean;
  lastAssignedAt: number;
  /** Bumped on every change of held or reserved. */
  changes: number;
  stream: Delivery | undefined;
  waiters: Waiter[];
}

export function newSlot(
  agentId: string,
  init: { profile: AgentProfile; capacity: number; draining: boolean },
): Slot {
  return {
    agentId,
    ...init,
    held: new Set(),
    reserved: 0,
    lastAssignedAt: 0,
    changes: 0,
    stream: undefined,
    waiters: [],
  };
}

/** Runs the agent may still be given now: never above capacity, none while draining. */
export function freeOf(slot: Slot): number {
  if (slot.draining) return 0;
  const room = slot.capacity - slot.held.size - slot.reserved;
  if (slot.stream) return room;
  return Math.min(
    room,
    slot.waiters.reduce((n, w) => n + w.remaining, 0),
  );
}

/** The queue entry of a PENDING run. */
export function pendingOf(row: RunRow): PendingNotice {
  return {
    id: row.id,
    priority: row.priority,
    createdMs: row.created_at.getTime(),
    selector: row.agent_selector,
    tools: row.required_tools,
    rejectedBy: row.rejected_by,
  };
}
