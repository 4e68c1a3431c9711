/**
 * What an agent does about its runs, shared by the Connect stream and the unary agent RPCs:
 * every call is checked against the run's lease (fencing token and holder) in the same SQL that
 * applies it, and its effects outside Postgres (lease store, dispatcher slots, log watchers,
 * other replicas) follow the commit.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { LogChunk } from "../../../gen/codex/agentmanager/v1/logs_pb.js";
import type { LeaseStatusSchema, RunState } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { invalidArgument } from "../../../mesh/errors.js";
import type { RawChunk } from "../domain/log-lines.js";
import { checkChunks, checkCompletion } from "../domain/validation.js";
import { agentOrigin } from "../events/origin.js";
import type { LeaseStore } from "../liveness/lease-store.js";
import type { Notifier } from "../liveness/notifier.js";
import type { AnswerSecrets } from "../store/answer-secrets.js";
import type { BatchKind, GroupCommitter } from "../store/group-commit.js";
import type { LogItem, LogResult } from "../store/log-batch.js";
import { startKind } from "../store/run-batches.js";
import type { EndingKinds } from "../store/run-endings.js";
import type { RunRow } from "../store/runs.js";
import { pendingOf } from "./dispatcher.js";

export type LeaseStatusInit = MessageInitShape<typeof LeaseStatusSchema>;

export interface AgentOpsOptions {
  committer: GroupCommitter;
  endings: EndingKinds;
  leases: LeaseStore;
  notifier: Notifier;
  secrets: AnswerSecrets;
  leaseTtlMs: number;
  /** The batch kind of log appends (registered with the committer). */
  logs: BatchKind<LogItem, LogResult>;
  /** The lease store lost its data: rebuild it from Postgres soon. */
  onLeaseStoreLost: () => void;
}

export class AgentOps {
  constructor(private readonly o: AgentOpsOptions) {}

  /** RUNNING (first report) or a new current step. */
  start(agentId: string, runId: string, token: bigint, step: number, correlationId: string): Promise<RunRow> {
    return this.o.committer.submit(
      startKind,
      { runId, agentId, token, step, origin: agentOrigin(agentId, correlationId) },
      runId,
    );
  }

  async appendLogs(
    agentId: string,
    runId: string,
    token: bigint,
    chunks: readonly LogChunk[],
    correlationId: string,
  ): Promise<LogResult> {
    const problems = checkChunks(chunks);
    if (problems.length > 0) throw invalidArgument("invalid log chunks", problems);
    const now = Date.now();
    const raw: RawChunk[] = chunks.map((c) => ({
      seq: c.seq,
      stream: c.stream,
      step: c.stepIndex,
      data: c.data,
      timeMs: c.time ? Number(c.time.seconds) * 1000 + Math.floor(c.time.nanos / 1e6) : now,
    }));
    const result = await this.o.committer.submit(
      this.o.logs,
      { runId, agentId, token, chunks: raw, origin: agentOrigin(agentId, correlationId) },
      runId,
    );
    if (result.lines > 0) this.o.notifier.emit({ t: "logs", runId }, "local");
    return result;
  }

  async complete(
    agentId: string,
    runId: string,
    token: bigint,
    outcome: { status: RunState; exitCode: number | undefined; error: string },
    correlationId: string,
  ): Promise<{ row: RunRow; replay: boolean }> {
    const problems = checkCompletion(outcome.status, outcome.error);
    if (problems.length > 0) throw invalidArgument("invalid completion", problems);
    const result = await this.o.committer.submit(
      this.o.endings.complete,
      {
        runId,
        agentId,
        token,
        status: outcome.status,
        exitCode: outcome.exitCode ?? null,
        error: outcome.error,
        origin: agentOrigin(agentId, correlationId),
      },
      runId,
    );
    if (!result.replay) await this.ended(result.row);
    return result;
  }

  async reject(
    agentId: string,
    runId: string,
    token: bigint,
    reason: string,
    correlationId: string,
  ): Promise<RunRow> {
    const row = await this.o.committer.submit(
      this.o.endings.reject,
      { runId, agentId, token, reason, origin: agentOrigin(agentId, correlationId) },
      runId,
    );
    await this.o.leases.release([runId]);
    this.o.notifier.emit({ t: "released", agentId, runId });
    this.o.notifier.emit({ t: "pending", run: pendingOf(row) });
    return row;
  }

  /** Heartbeat: liveness plus renewal of the leases named; one Redis round trip. */
  async renew(
    agentId: string,
    runs: readonly { runId: string; token: bigint }[],
    metrics: string,
  ): Promise<LeaseStatusInit[]> {
    const now = Date.now();
    const expire = now + this.o.leaseTtlMs;
    const renewals = await this.o.leases.renew(agentId, runs, now, expire, metrics);
    if (renewals.some((r) => r.valid === "unknown")) this.o.onLeaseStoreLost();
    return runs.map((r, i) => {
      const renewal = renewals[i] ?? { valid: false };
      if (renewal.valid === false) return { runId: r.runId, fencingToken: r.token, valid: false };
      return {
        runId: r.runId,
        fencingToken: r.token,
        valid: true,
        leaseExpireTime: timestampFromMs(expire),
        cancelRequested: renewal.valid === true && renewal.cancel,
      };
    });
  }

  /** After a run left its lease for good (completed, expired into a terminal state, cancelled). */
  async ended(row: RunRow): Promise<void> {
    await this.o.leases.release([row.id]);
    this.o.notifier.emit({ t: "released", agentId: row.agent_id, runId: row.id });
    this.o.notifier.emit({ t: "logs", runId: row.id }, "local");
  }
}
