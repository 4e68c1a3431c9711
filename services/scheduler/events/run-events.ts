import { RunState } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { RunCompletedSchema, RunStartedSchema } from "../../../gen/codex/events/v1/agent_events_pb.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import type { ConsumedMessage } from "../../../mesh/nats/consumer.js";
import { type Core, type Tx, transact } from "../core.js";
import {
  applyRunOutcome,
  applyRunStarted,
  isCurrentRun,
  markRunning,
  type RunReport,
  type RunResult,
  type RunStart,
  recordRunOutcomes,
  settleRun,
  startsRun,
} from "../dispatch/outcome.js";
import { getTask, getTasks, isUuid, type TaskRow } from "../store/tasks.js";
import { causeOf, decode } from "./decode.js";
import type { Cause } from "./publish.js";

/**
 * RunStarted and RunCompleted, one message at a time (the fallback of a failed batch) or a
 * batch at a time. Both are idempotent without processed_events: an outcome is applied once
 * per run id (run_outcomes, shared with ReportRunOutcome and the dispatcher's replay), and a
 * start moves only a DISPATCHED task. Events of runs that are not the scheduler's (task id not
 * a task here) are acked as they are, without a transaction or an error built for them.
 */

const RESULTS: Partial<Record<RunState, RunResult>> = {
  [RunState.SUCCEEDED]: "SUCCEEDED",
  [RunState.FAILED]: "FAILED",
  [RunState.CANCELLED]: "CANCELLED",
  [RunState.LOST]: "LOST",
};

/** Outcomes that are expected races (the run was superseded, the task is gone) are acked. */
function ignoreStale(err: unknown): void {
  const e = ServiceError.from(err);
  if (e.code === Code.NOT_FOUND || e.code === Code.FAILED_PRECONDITION) return;
  throw err;
}

function runReport(msg: ConsumedMessage): { report: RunReport; cause: Cause } | undefined {
  const [env, e] = decode(msg, RunCompletedSchema);
  const result = RESULTS[e.status];
  if (!result || !isUuid(e.taskId)) return undefined;
  const report = { taskId: e.taskId, runId: e.runId, attempt: e.attempt, result, error: e.error };
  return { report, cause: causeOf(env) };
}

function runStart(msg: ConsumedMessage): { start: RunStart; cause: Cause } | undefined {
  const [env, e] = decode(msg, RunStartedSchema);
  if (!isUuid(e.taskId)) return undefined;
  return {
    start: { taskId: e.taskId, runId: e.runId, attempt: e.attempt, agentId: e.agentId },
    cause: causeOf(env),
  };
}

export async function onRunCompleted(core: Core, msg: ConsumedMessage): Promise<void> {
  const r = runReport(msg);
  if (r) await applyRunOutcome(core, r.report, r.cause).catch(ignoreStale);
}

export async function onRunStarted(core: Core, msg: ConsumedMessage): Promise<void> {
  const r = runStart(msg);
  if (r) await applyRunStarted(core, r.start, r.cause);
}

/** Events per transaction before a batch is split into transactions running side by side. */
const EVENTS_PER_TRANSACTION = 32;
/** Transactions of one batch at once (a batch is at most 256 events). */
const MAX_PARALLEL = 8;

/**
 * Runs `fn` over the events split by task into up to {@link MAX_PARALLEL} groups of disjoint
 * tasks (a task's events stay together, in delivery order), side by side: each event costs a
 * few statements in sequence, and one connection alone would cap the rate a consumer keeps up
 * with. Settles every group before throwing the first failure, so the consumer's per-message
 * fallback never overlaps a group still running (groups that committed are no-ops to repeat).
 */
async function inParallel<E>(events: E[], taskOf: (e: E) => string, fn: (events: E[]) => Promise<void>) {
  if (events.length === 0) return;
  const groups = Math.min(MAX_PARALLEL, Math.ceil(events.length / EVENTS_PER_TRANSACTION));
  if (groups === 1) return fn(events);
  const tasks = [...new Set(events.map(taskOf))].sort();
  const group = new Map(tasks.map((t, i) => [t, Math.floor((i * groups) / tasks.length)]));
  const split: E[][] = Array.from({ length: groups }, () => []);
  for (const e of events) split[group.get(taskOf(e)) ?? 0]?.push(e);
  const results = await Promise.allSettled(split.filter((g) => g.length > 0).map(fn));
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

/**
 * The tasks of a batch's events, locked (in id order, as every batch locks them, so two
 * batches never deadlock on each other), and a way to re-read one after the batch changed it:
 * a later event of the same task is then judged by the task as it is now, as one event per
 * transaction would judge it.
 */
async function lockTasks(tx: Tx, ids: string[]) {
  const rows = new Map((await getTasks(tx.client, [...new Set(ids)], true)).map((t) => [t.id, t]));
  const changed = new Set<string>();
  return {
    async current(id: string): Promise<TaskRow | undefined> {
      if (!changed.has(id)) return rows.get(id);
      const t = await getTask(tx.client, id);
      if (t) rows.set(id, t);
      changed.delete(id);
      return t;
    },
    changed: (id: string) => changed.add(id),
    any: rows.size > 0,
  };
}

/**
 * A batch of RunCompleted in one transaction (a few side by side for a large batch, see
 * {@link inParallel}): decoded at once, the tasks of all events locked with one query, the run
 * ids already applied read with one, and the new outcomes recorded with one insert; each
 * applicable outcome then does exactly what {@link applyRunOutcome} does, in delivery order.
 * Throwing (an undecodable event, a deadlock) rolls the transaction back and the consumer
 * falls back to {@link onRunCompleted} per message.
 */
export async function onRunCompletedBatch(core: Core, msgs: ConsumedMessage[]): Promise<void> {
  const all = msgs.map(runReport).filter((r) => r !== undefined);
  await inParallel(
    all,
    (e) => e.report.taskId,
    (events) => completedInOneTransaction(core, events),
  );
}

async function completedInOneTransaction(core: Core, events: { report: RunReport; cause: Cause }[]) {
  const applied: { runId: string; taskId: string; result: RunResult }[] = [];
  await transact(core, async (tx) => {
    const tasks = await lockTasks(
      tx,
      events.map((e) => e.report.taskId),
    );
    if (!tasks.any) return;
    const { rows } = await tx.client.query<{ run_id: string }>(
      "SELECT run_id FROM run_outcomes WHERE run_id = ANY($1::text[])",
      [[...new Set(events.map((e) => e.report.runId))]],
    );
    const seen = new Set(rows.map((r) => r.run_id));
    for (const { report: r, cause } of events) {
      if (seen.has(r.runId)) continue;
      const t = await tasks.current(r.taskId);
      if (!t || !isCurrentRun(t, r.runId, r.attempt)) continue;
      seen.add(r.runId);
      applied.push({ runId: r.runId, taskId: t.id, result: r.result });
      await settleRun(core, tx, t, r, cause);
      tasks.changed(t.id);
    }
    await recordRunOutcomes(tx, applied);
  });
  core.metrics.runsEnded(applied);
}

/**
 * A batch of RunStarted in one transaction (or a few, as above): the tasks locked with one
 * query, then each event does what {@link applyRunStarted} does, in delivery order (a repeated
 * start finds the task RUNNING already and changes nothing).
 */
export async function onRunStartedBatch(core: Core, msgs: ConsumedMessage[]): Promise<void> {
  const all = msgs.map(runStart).filter((r) => r !== undefined);
  await inParallel(
    all,
    (e) => e.start.taskId,
    (events) => startedInOneTransaction(core, events),
  );
}

async function startedInOneTransaction(core: Core, events: { start: RunStart; cause: Cause }[]) {
  await transact(core, async (tx) => {
    const tasks = await lockTasks(
      tx,
      events.map((e) => e.start.taskId),
    );
    if (!tasks.any) return;
    for (const { start, cause } of events) {
      const t = await tasks.current(start.taskId);
      if (!t || !startsRun(t, start)) continue;
      await markRunning(core, tx, t, start, cause);
      tasks.changed(t.id);
    }
  });
}
