/**
 * Finds agents that stopped heartbeating (OFFLINE after N missed intervals: AgentStateChanged
 * and AgentLost) and drains whose deadline passed (their runs are cancelled). The runs of a lost
 * agent are not touched here: their leases expire on their own and the sweeper requeues them.
 */
import type pg from "pg";
import type { Logger } from "../../../mesh/logging.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";
import { selfOrigin } from "../events/origin.js";
import type { LeaseStore } from "../liveness/lease-store.js";
import type { Notifier } from "../liveness/notifier.js";
import { markLost } from "../store/agent-changes.js";
import type { AnswerSecrets } from "../store/answer-secrets.js";
import { requestCancel } from "../store/cancel.js";
import { inTx } from "../store/tx.js";

export interface OfflineDetectorOptions {
  pool: pg.Pool;
  subjects: Subjects;
  leases: LeaseStore;
  notifier: Notifier;
  secrets: AnswerSecrets;
  logger: Logger;
  heartbeatIntervalMs: number;
  missedIntervals: number;
}

export class OfflineDetector {
  #timer: NodeJS.Timeout | undefined;
  #busy: Promise<void> | undefined;

  constructor(private readonly o: OfflineDetectorOptions) {}

  start(): void {
    const every = Math.max(10, Math.min(1_000, Math.floor(this.o.heartbeatIntervalMs / 2)));
    this.#timer = setInterval(() => {
      if (!this.#busy) this.#busy = this.tick().finally(() => (this.#busy = undefined));
    }, every);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#busy;
  }

  async tick(now = Date.now()): Promise<void> {
    try {
      const limitMs = this.o.heartbeatIntervalMs * this.o.missedIntervals;
      for (const { agentId, lastMs } of await this.o.leases.staleAgents(now - limitMs)) {
        const reason = `no heartbeat for ${Math.round((now - lastMs) / 1000)}s`;
        const row = await inTx(this.o.pool, this.o.subjects, (ctx) =>
          markLost(ctx, agentId, lastMs, reason, selfOrigin()),
        );
        await this.o.leases.parkAgent(agentId, lastMs);
        if (row) this.o.notifier.emit({ t: "offline", agentId });
      }
      await this.#drainDeadlines(now);
    } catch (err) {
      this.o.logger.warn({ err }, "offline detection failed; retrying");
    }
  }

  async #drainDeadlines(now: number): Promise<void> {
    const { rows } = await this.o.pool.query<{ id: string }>(
      "SELECT id FROM agents WHERE draining AND drain_deadline <= $1 LIMIT 50",
      [new Date(now)],
    );
    for (const { id } of rows) {
      const { rows: runs } = await this.o.pool.query<{ id: string }>(
        "SELECT id FROM runs WHERE agent_id = $1 AND state IN (2, 3) AND NOT cancel_requested",
        [id],
      );
      for (const run of runs) {
        const out = await inTx(this.o.pool, this.o.subjects, (ctx) =>
          requestCancel(ctx, run.id, {
            reason: "drain deadline passed",
            requestedBy: "agent-manager",
            etag: "",
            origin: selfOrigin(),
            secrets: this.o.secrets,
          }),
        );
        if (out.effect === "requested") {
          await this.o.leases.markCancel(out.row.id, out.row.fencing_token);
          this.o.notifier.emit({
            t: "cancel",
            agentId: out.row.agent_id,
            runId: out.row.id,
            token: out.row.fencing_token.toString(),
            reason: "drain deadline passed",
          });
        }
      }
      await this.o.pool.query("UPDATE agents SET drain_deadline = NULL WHERE id = $1", [id]);
    }
  }
}
