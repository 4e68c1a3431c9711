/**
 * Hands PENDING runs to agents: pushed on their open streams, or to a waiting ClaimRun.
 *
 * Why in memory: assignment is the latency-critical path (enqueue -> assignment), and asking
 * Postgres "which run next, which agent is least loaded" on every change would poll. The
 * queue of PENDING runs and the load of the agents connected here are kept in memory and a
 * dispatch pass runs whenever something changes (run enqueued or requeued, slot freed, agent
 * connected or undrained). The claim itself is still a conditional UPDATE through the group
 * committer (PENDING -> ASSIGNED, fencing token + 1), so another replica, a cancellation or a
 * stale queue entry can never produce a double assignment; the loser just drops its entry.
 *
 * Never above capacity: a slot counts the runs the agent holds plus those being claimed for it
 * (reserved before the claim is submitted, released when it settles).
 */
import type { Logger } from "../../../mesh/logging.js";
import { type AgentProfile, isEligible, pickLeastLoaded } from "../domain/matching.js";
import { PendingQueue } from "../domain/pending-queue.js";
import { selfOrigin } from "../events/origin.js";
import type { LeaseStore } from "../liveness/lease-store.js";
import type { PendingNotice } from "../liveness/notifier.js";
import type { GroupCommitter } from "../store/group-commit.js";
import { assignKind } from "../store/run-batches.js";
import type { RunRow } from "../store/runs.js";
import { type Delivery, freeOf, newSlot, type Slot, type Waiter } from "./slot.js";

export { pendingOf } from "./slot.js";
export type { Delivery };

const SCAN_LIMIT = 5_000;

export interface DispatcherOptions {
  committer: GroupCommitter;
  leases: LeaseStore;
  leaseTtlMs: number;
  logger: Logger;
  /** A run left the queue for an agent here (other replicas may drop it). */
  onTaken?: (runId: string) => void;
  /** A run was leased to an agent whose stream closed before it could be pushed: hand it back. */
  onUndelivered?: (row: RunRow) => void;
  /** A claim settled: it took the run, or found it no longer (or not yet) PENDING. */
  onClaimed?: (taken: boolean) => void;
}

export class Dispatcher {
  readonly #queue = new PendingQueue<PendingNotice>();
  readonly #slots = new Map<string, Slot>();
  readonly #inflight = new Set<string>();
  /**
   * Pending notices that arrived while a claim of the same run was in flight. The claim may have
   * run before the run's insert committed (concurrent batches) and then finds no row: the notice
   * is applied when it settles empty-handed, or dropped when the claim took the run.
   */
  readonly #deferred = new Map<string, PendingNotice>();
  /** Runs offered before their insert: whether the offer's claim took them (see enqueued). */
  readonly #offers = new Map<string, "open" | "taken">();
  #scheduled = false;

  constructor(private readonly o: DispatcherOptions) {}

  get pendingCount(): number {
    return this.#queue.size;
  }

  addPending(run: PendingNotice): void {
    if (this.#inflight.has(run.id)) {
      this.#deferred.set(run.id, run);
      return;
    }
    this.#queue.add(run);
    this.schedule();
  }

  /**
   * A run about to be enqueued: dispatch it now, so its claim is submitted before its insert
   * and both commit in the same batch (kinds apply in order: insert, then claim). That saves a
   * whole transaction on the enqueue -> assignment path. If the claim runs first in another
   * batch it finds no row and drops the entry; the enqueue's own "pending" notice after commit
   * puts it back.
   */
  offer(run: PendingNotice): void {
    this.#offers.set(run.id, "open");
    this.#queue.add(run);
    this.#pass();
  }

  /**
   * The insert of an offered run committed: whether the run still needs its "pending" notice.
   * Not when the offer's claim has already taken it: the notice would queue it again for a claim
   * bound to find nothing, whose reservation meanwhile makes the agent look busier than it is.
   */
  enqueued(runId: string): boolean {
    const offer = this.#offers.get(runId);
    this.#offers.delete(runId);
    return offer !== "taken";
  }

  removePending(runId: string): void {
    this.#queue.remove(runId);
    this.#deferred.delete(runId);
    this.#offers.delete(runId);
  }

  /** An agent's stream is open here: push it work while it has free capacity. */
  attach(
    agentId: string,
    init: { profile: AgentProfile; capacity: number; draining: boolean; held: readonly string[] },
    stream: Delivery,
  ): void {
    const slot = this.#slot(agentId, init);
    slot.held = new Set([...init.held, ...slot.held]);
    slot.stream = stream;
    this.schedule();
  }

  /** The stream closed (only the stream that attached may detach). */
  detach(agentId: string, stream: Delivery): void {
    const slot = this.#slots.get(agentId);
    if (!slot || slot.stream !== stream) return;
    slot.stream = undefined;
    this.#gc(slot);
  }

  setDraining(agentId: string, draining: boolean): void {
    const slot = this.#slots.get(agentId);
    if (!slot) return;
    slot.draining = draining;
    if (!draining) this.schedule();
  }

  /** The agent no longer holds the run (completed, rejected, expired, revoked). */
  released(agentId: string, runId: string): void {
    const slot = this.#slots.get(agentId);
    if (slot?.held.delete(runId)) {
      slot.changes += 1;
      this.schedule();
    }
  }

  /** Free slots of an agent connected here, or undefined when it is not. */
  roomFor(agentId: string): number | undefined {
    const slot = this.#slots.get(agentId);
    return slot ? freeOf(slot) : undefined;
  }

  /** A run leased to an agent outside the dispatcher (ClaimRun command): count it. */
  adopt(agentId: string, runId: string): void {
    const slot = this.#slots.get(agentId);
    if (!slot || slot.held.has(runId)) return;
    slot.held.add(runId);
    slot.changes += 1;
  }

  /** A mark that changes whenever the agent's held runs change (see resetHeld). */
  heldMark(agentId: string): number {
    return this.#slots.get(agentId)?.changes ?? -1;
  }

  /**
   * Replaces the runs an agent holds with what Postgres says (repairs a lost "released" notice),
   * unless they changed since `mark` was taken or a claim is in flight: then the Postgres read
   * may be older than what is known here, and applying it could overfill the agent.
   */
  resetHeld(agentId: string, held: readonly string[], mark: number): void {
    const slot = this.#slots.get(agentId);
    if (!slot || slot.changes !== mark || slot.reserved > 0) return;
    slot.held = new Set(held);
    this.schedule();
  }

  connectedAgents(): string[] {
    return [...this.#slots.values()].filter((s) => s.stream).map((s) => s.agentId);
  }

  /**
   * ClaimRun: up to `max` runs for an agent without a stream here, waiting up to `waitMs`.
   * Resolves with the runs leased (possibly none); never abandons a claim in flight.
   */
  claim(
    agentId: string,
    init: { profile: AgentProfile; capacity: number; draining: boolean; held: readonly string[] },
    max: number,
    waitMs: number,
  ): Promise<RunRow[]> {
    const slot = this.#slot(agentId, init);
    if (!slot.stream) slot.held = new Set(init.held);
    return new Promise<RunRow[]>((resolve) => {
      const waiter: Waiter = {
        remaining: max,
        inflight: 0,
        rows: [],
        done: (rows) => {
          clearTimeout(timer);
          slot.waiters = slot.waiters.filter((w) => w !== waiter);
          this.#gc(slot);
          resolve(rows);
        },
      };
      const timer = setTimeout(() => {
        waiter.remaining = 0;
        if (waiter.inflight === 0) waiter.done(waiter.rows);
      }, waitMs);
      slot.waiters.push(waiter);
      this.#pass();
      if (waiter.inflight === 0 && waitMs === 0) waiter.done([]);
    });
  }

  /** Runs a dispatch pass soon (coalesced). */
  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#pass();
    });
  }

  #slot(agentId: string, init: { profile: AgentProfile; capacity: number; draining: boolean }): Slot {
    let slot = this.#slots.get(agentId);
    if (!slot) {
      slot = newSlot(agentId, init);
      this.#slots.set(agentId, slot);
    } else {
      slot.profile = init.profile;
      slot.capacity = init.capacity;
      slot.draining = init.draining;
    }
    return slot;
  }

  #gc(slot: Slot): void {
    if (!slot.stream && slot.waiters.length === 0 && slot.reserved === 0) this.#slots.delete(slot.agentId);
  }

  #pass(): void {
    if (this.#queue.size === 0) return;
    const open = [...this.#slots.values()].filter((s) => freeOf(s) > 0);
    if (open.length === 0) return;
    for (const run of this.#queue.ordered(SCAN_LIMIT)) {
      const best = pickLeastLoaded(
        open
          .filter((s) => freeOf(s) > 0 && isEligible(s.profile, run))
          .map((s) => ({
            id: s.agentId,
            running: s.held.size + s.reserved,
            capacity: s.capacity,
            lastAssignedAt: s.lastAssignedAt,
            slot: s,
          })),
      );
      if (!best) continue;
      this.#queue.remove(run.id);
      this.#assign(run, best.slot);
      if (open.every((s) => freeOf(s) <= 0)) return;
    }
  }

  #assign(run: PendingNotice, slot: Slot): void {
    slot.reserved += 1;
    slot.changes += 1;
    slot.lastAssignedAt = Date.now();
    const waiter = slot.stream ? undefined : slot.waiters.find((w) => w.remaining > 0);
    if (waiter) {
      waiter.remaining -= 1;
      waiter.inflight += 1;
    }
    this.#inflight.add(run.id);
    this.o.onTaken?.(run.id);
    const settle = (row: RunRow | undefined) => {
      slot.reserved -= 1;
      slot.changes += 1;
      this.#inflight.delete(run.id);
      const deferred = this.#deferred.get(run.id);
      this.#deferred.delete(run.id);
      if (!row && deferred) this.#queue.add(deferred);
      if (row && this.#offers.has(row.id)) this.#offers.set(row.id, "taken");
      this.o.onClaimed?.(row !== undefined);
      if (row) {
        slot.held.add(row.id);
        if (waiter) waiter.rows.push(row);
        else if (slot.stream) slot.stream(row);
        else {
          slot.held.delete(row.id);
          this.o.onUndelivered?.(row);
        }
      }
      if (waiter) {
        waiter.inflight -= 1;
        if (waiter.inflight === 0 && (waiter.rows.length > 0 || waiter.remaining === 0))
          waiter.done(waiter.rows);
      }
      this.#gc(slot);
      this.schedule();
    };
    this.o.committer
      .submit(
        assignKind,
        { runId: run.id, agentId: slot.agentId, leaseTtlMs: this.o.leaseTtlMs, origin: selfOrigin() },
        run.id,
      )
      .then((row) => {
        if (row) {
          // Not awaited: a round trip less before the push (each hop costs ~0.5 ms here). The
          // grant goes out before the push on the store's one connection, so any renewal the
          // agent's heartbeats cause is queued behind it; a lost grant is re-added from Postgres
          // by the sweeper's repair, as after a crash between commit and grant.
          this.o.leases
            .grant([
              {
                runId: row.id,
                token: row.fencing_token,
                agentId: row.agent_id,
                expireMs: row.lease_expire_at?.getTime() ?? Date.now() + this.o.leaseTtlMs,
              },
            ])
            .catch((err: unknown) =>
              this.o.logger.warn({ err, runId: row.id }, "lease not recorded; the repair re-adds it"),
            );
        }
        settle(row);
      })
      .catch((err: unknown) => {
        this.o.logger.warn({ err, runId: run.id }, "claim failed; the run stays PENDING");
        settle(undefined);
        setTimeout(() => this.addPending(run), 500).unref();
      });
  }
}
