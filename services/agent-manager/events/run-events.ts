/**
 * The run events of agent_events.proto, built from stored rows so that what is published is
 * exactly what was committed. RunCompleted is built in one place only, and only by the
 * transitions that move a run into a terminal state, which is what makes it exactly-once.
 */
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  RunAssignedSchema,
  RunCancelRequestedSchema,
  RunCompletedSchema,
  RunEnqueuedSchema,
  RunLeaseExpiredSchema,
  RunRejectedSchema,
  RunStartedSchema,
} from "../../../gen/codex/events/v1/agent_events_pb.js";
import type { EventEnvelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import { durationBetween } from "../domain/run-state.js";
import { durationOf } from "../store/convert.js";
import { type RunRow, toRun } from "../store/runs.js";
import { envelope, type Origin } from "./origin.js";

const agg = (row: RunRow) => ({
  type: "run" as const,
  id: row.id,
  version: row.version,
  projectId: row.project_id,
});

export function runEnqueued(row: RunRow, origin: Origin, at: Date): EventEnvelope {
  return envelope(RunEnqueuedSchema, { run: toRun(row) }, agg(row), origin, at);
}

export function runAssigned(row: RunRow, leaseExpireMs: number, origin: Origin, at: Date): EventEnvelope {
  return envelope(
    RunAssignedSchema,
    {
      runId: row.id,
      taskId: row.task_id,
      workItemId: row.work_item_id,
      agentId: row.agent_id,
      attempt: row.attempt,
      fencingToken: row.fencing_token,
      leaseExpireTime: timestampFromMs(leaseExpireMs),
    },
    agg(row),
    origin,
    at,
  );
}

export function runStarted(row: RunRow, origin: Origin, at: Date): EventEnvelope {
  return envelope(
    RunStartedSchema,
    {
      runId: row.id,
      taskId: row.task_id,
      workItemId: row.work_item_id,
      agentId: row.agent_id,
      attempt: row.attempt,
      startTime: timestampFromDate(row.started_at ?? at),
    },
    agg(row),
    origin,
    at,
  );
}

export function runRejected(
  row: RunRow,
  agentId: string,
  reason: string,
  origin: Origin,
  at: Date,
): EventEnvelope {
  return envelope(RunRejectedSchema, { runId: row.id, agentId, reason }, agg(row), origin, at);
}

export function runCancelRequested(
  row: RunRow,
  requestedBy: string,
  reason: string,
  origin: Origin,
  at: Date,
) {
  return envelope(
    RunCancelRequestedSchema,
    { runId: row.id, taskId: row.task_id, workItemId: row.work_item_id, requestedBy, reason },
    agg(row),
    origin,
    at,
  );
}

export function runLeaseExpired(
  row: RunRow,
  expiredToken: bigint,
  leaseExpireMs: number,
  origin: Origin,
  at: Date,
): EventEnvelope {
  return envelope(
    RunLeaseExpiredSchema,
    {
      runId: row.id,
      taskId: row.task_id,
      workItemId: row.work_item_id,
      agentId: row.agent_id,
      fencingToken: expiredToken,
      leaseExpireTime: timestampFromMs(leaseExpireMs),
      leaseExpiries: row.lease_expiries,
      requeued: row.state === 1,
    },
    agg(row),
    origin,
    at,
  );
}

/** RunCompleted of a row that has just become terminal. */
export function runCompleted(row: RunRow, origin: Origin, at: Date): EventEnvelope {
  const finished = row.finished_at ?? at;
  const queued = durationBetween(row.created_at, row.started_at);
  const ran = durationBetween(row.started_at, finished);
  return envelope(
    RunCompletedSchema,
    {
      runId: row.id,
      workItemId: row.work_item_id,
      status: row.state,
      agentId: row.agent_id,
      timestamp: timestampFromDate(finished),
      taskId: row.task_id,
      attempt: row.attempt,
      ...(row.exit_code !== null ? { exitCode: row.exit_code } : {}),
      error: row.error,
      ...(queued !== undefined ? { queueDuration: durationOf(queued) } : {}),
      ...(ran !== undefined ? { runDuration: durationOf(ran) } : {}),
    },
    agg(row),
    origin,
    at,
  );
}
