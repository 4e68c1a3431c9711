/**
 * The run state machine of run.proto, and the lease rules that guard every agent call. Pure.
 *
 *   PENDING -> ASSIGNED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED
 *   ASSIGNED | RUNNING -> PENDING (lease expired, or agent rejected the assignment)
 *   ASSIGNED | RUNNING -> LOST (lease expired for the max-th time)
 *   PENDING -> CANCELLED
 */
import { RunState } from "../../../gen/codex/agentmanager/v1/run_pb.js";

/** States in which an agent holds a lease. */
export const ACTIVE_STATES: readonly RunState[] = [RunState.ASSIGNED, RunState.RUNNING];
/** States a run never leaves. */
export const TERMINAL_STATES: readonly RunState[] = [
  RunState.SUCCEEDED,
  RunState.FAILED,
  RunState.CANCELLED,
  RunState.LOST,
];
/** Outcomes an agent may report. */
export const COMPLETION_STATES: readonly RunState[] = [
  RunState.SUCCEEDED,
  RunState.FAILED,
  RunState.CANCELLED,
];

export function isActive(state: RunState): boolean {
  return state === RunState.ASSIGNED || state === RunState.RUNNING;
}

export function isTerminal(state: RunState): boolean {
  return TERMINAL_STATES.includes(state);
}

/** The lease-relevant part of a run. */
export interface LeaseView {
  state: RunState;
  fencingToken: bigint;
  agentId: string;
}

/** Why an agent's call about a run is refused. */
export type LeaseRefusal = "STALE_LEASE" | "NOT_LEASE_HOLDER";

/**
 * Checks an agent's claim to hold a run's lease. The fencing token decides first: any token
 * other than the current one is stale (the lease expired and was re-claimed, or never was).
 * With the current token, another agent is not the holder; the holder itself is stale once the
 * run left ASSIGNED/RUNNING (expired back to PENDING, or ended).
 */
export function checkLease(run: LeaseView, agentId: string, token: bigint): LeaseRefusal | undefined {
  if (token !== run.fencingToken) return "STALE_LEASE";
  if (agentId !== run.agentId) return "NOT_LEASE_HOLDER";
  return isActive(run.state) ? undefined : "STALE_LEASE";
}

/**
 * What a retried completion gets: the same token, holder and outcome as the recorded one is a
 * replay (answered with the run, no second RunCompleted); anything else is refused by
 * {@link checkLease}.
 */
export function isCompletionReplay(
  run: LeaseView,
  agentId: string,
  token: bigint,
  status: RunState,
): boolean {
  return run.state === status && run.fencingToken === token && run.agentId === agentId;
}

/** Where a run goes when its lease expires: PENDING again, or LOST at the max-th expiry. */
export function afterLeaseExpiry(
  expiriesBefore: number,
  maxExpiries: number,
): { state: RunState; expiries: number; requeued: boolean } {
  const expiries = expiriesBefore + 1;
  return expiries >= maxExpiries
    ? { state: RunState.LOST, expiries, requeued: false }
    : { state: RunState.PENDING, expiries, requeued: true };
}

/** Milliseconds between two instants, or undefined when either is missing. */
export function durationBetween(from: Date | null, to: Date | null): number | undefined {
  if (!from || !to) return undefined;
  return Math.max(0, to.getTime() - from.getTime());
}
