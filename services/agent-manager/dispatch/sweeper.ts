/**
 * The manager's clock-driven duties for runs: expired leases (requeue, or LOST at the
 * max-th expiry, or CANCELLED when cancellation was asked), cancellations whose grace ran out,
 * and the repairs that make Redis and in-memory state safe to lose: rebuilding the lease store
 * from Postgres, re-adding leases missing from it, resyncing the PENDING queue and the agents'
 * held runs. Runs on every replica; the lease store hands each expired lease to one of them.
 */
import type pg from "pg";
import type { Logger } from "../../../mesh/logging.js";
import type { LeaseStore } from "../liveness/lease-store.js";
import type { Notifier } from "../liveness/notifier.js";
import { liveAgentIds, runningOf } from "../store/agents.js";
import type { GroupCommitter } from "../store/group-commit.js";
import type { EndingKinds } from "../store/run-endings.js";
import { leasedRuns, pendingRuns, type RunRow } from "../store/runs.js";
import type { AgentOps } from "./agent-ops.js";
import { type Dispatcher, pendingOf } from "./dispatcher.js";

export interface SweeperOptions {
  pool: pg.Pool;
  committer: GroupCommitter;
  endings: EndingKinds;
  leases: LeaseStore;
  dispatcher: Dispatcher;
  notifier: Notifier;
  ops: AgentOps;
  logger: Logger;
  intervalMs: number;
  leaseTtlMs: number;
  cancelGraceMs: number;
}

const EXPIRE_BATCH = 500;

export class Sweeper {
  #timer: NodeJS.Timeout | undefined;
  #busy: Promise<void> | undefined;
  #rebuild = false;
  #lastRepair = 0;
  #lastOverdue = 0;

  constructor(private readonly o: SweeperOptions) {}

  start(): void {
    this.#timer = setInterval(() => {
      if (!this.#busy) this.#busy = this.tick().finally(() => (this.#busy = undefined));
    }, this.o.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#busy;
  }

  /** Asks for a rebuild of the lease store at the next tick. */
  requestRebuild(): void {
    this.#rebuild = true;
  }

  async tick(now = Date.now()): Promise<void> {
    try {
      if (this.#rebuild) await this.rebuild(now);
      const expired = await this.o.leases.takeExpired(now, EXPIRE_BATCH);
      if (expired === undefined) await this.rebuild(now);
      else await Promise.all(expired.map((e) => this.#expire(e.runId, e.token, e.expireMs, e.agentId)));
      if (now - this.#lastOverdue >= Math.min(1_000, this.o.cancelGraceMs)) {
        this.#lastOverdue = now;
        await this.#overdueCancels(now);
      }
      if (now - this.#lastRepair >= Math.max(1_000, this.o.leaseTtlMs)) {
        this.#lastRepair = now;
        await this.repair(now);
      }
    } catch (err) {
      this.o.logger.warn({ err }, "sweep failed; retrying at the next tick");
    }
  }

  /** Refills the lease store from Postgres: leases granted at claim, stretched by one TTL. */
  async rebuild(now: number): Promise<void> {
    this.#rebuild = false;
    const rows = await leasedRuns(this.o.pool);
    const live = await liveAgentIds(this.o.pool);
    await this.o.leases.rebuild(
      rows.map((r) => ({
        runId: r.id,
        token: r.fencing_token,
        agentId: r.agent_id,
        expireMs: Math.max(r.lease_expire_at?.getTime() ?? 0, now + this.o.leaseTtlMs),
        cancel: r.cancel_requested,
      })),
      live,
      now,
    );
    const level = rows.length > 0 ? "warn" : "info";
    this.o.logger[level]({ leases: rows.length, agents: live.length }, "lease store rebuilt from Postgres");
  }

  /** Re-adds leases missing from the store and resyncs queue and held runs with Postgres. */
  async repair(now: number): Promise<void> {
    const rows = await leasedRuns(this.o.pool);
    await this.o.leases.addMissing(
      rows.map((r) => ({
        runId: r.id,
        token: r.fencing_token,
        agentId: r.agent_id,
        expireMs: Math.max(r.lease_expire_at?.getTime() ?? 0, now),
        cancel: r.cancel_requested,
      })),
    );
    for (const row of await pendingRuns(this.o.pool, 10_000)) {
      this.o.dispatcher.addPending(pendingOf(row));
    }
    const agents = this.o.dispatcher.connectedAgents();
    const marks = new Map(agents.map((a) => [a, this.o.dispatcher.heldMark(a)]));
    const held = await runningOf(this.o.pool, agents);
    for (const [agentId, runIds] of held)
      this.o.dispatcher.resetHeld(agentId, runIds, marks.get(agentId) ?? -1);
  }

  async #expire(runId: string, token: bigint, expireMs: number, agentId: string): Promise<void> {
    try {
      const row = await this.o.committer.submit(
        this.o.endings.expire,
        { runId, token, expiredAtMs: expireMs },
        runId,
      );
      if (!row) return;
      this.o.notifier.emit({ t: "released", agentId, runId });
      if (row.state === 1) this.o.notifier.emit({ t: "pending", run: pendingOf(row) });
      else await this.o.ops.ended(row);
    } catch (err) {
      this.o.logger.warn(
        { err, runId },
        "lease expiry not recorded; the lease is restored by the next repair",
      );
    }
  }

  async #overdueCancels(now: number): Promise<void> {
    const { rows } = await this.o.pool.query<Pick<RunRow, "id" | "fencing_token">>(
      `SELECT id, fencing_token FROM runs WHERE cancel_requested AND state IN (2, 3) AND cancel_requested_at <= $1
       ORDER BY cancel_requested_at LIMIT 200`,
      [new Date(now - this.o.cancelGraceMs)],
    );
    await Promise.all(
      rows.map(async (r) => {
        const row = await this.o.committer.submit(
          this.o.endings.cancelOverdue,
          {
            runId: r.id,
            token: r.fencing_token,
            error: "cancelled: the agent did not stop the run within the grace time",
          },
          r.id,
        );
        if (row) await this.o.ops.ended(row);
      }),
    );
  }
}
