import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  DependencyFailurePolicy,
  RetryPolicy_Jitter,
  type ScheduledTask,
  ScheduledTaskSchema,
  TaskState,
  WaitReason_Kind,
} from "../../../gen/codex/scheduler/v1/task_pb.js";
import { factsOf } from "../dispatch/evaluate.js";
import { waitReasons } from "../domain/readiness.js";
import type { Db } from "../store/db.js";
import { dependenciesOf, type Outcome, type TaskRow } from "../store/tasks.js";

const ts = (d: Date | null) => (d ? timestampFromDate(d) : undefined);

/** Opaque version tag of a task. */
export function taskEtag(t: Pick<TaskRow, "id" | "version">): string {
  return Buffer.from(`${t.id}:${t.version}`).toString("base64url");
}

/** A task as the API shows it, wait reasons computed at `now` from its facts. */
export function taskMessage(
  t: TaskRow,
  deps: readonly { workItemId: string; outcome: Outcome }[],
  now = new Date(),
): ScheduledTask {
  const reasons = t.state === "WAITING" ? waitReasons(factsOf(t, deps), now) : [];
  return create(ScheduledTaskSchema, {
    id: t.id,
    workItemId: t.workItemId,
    projectId: t.projectId,
    priority: t.priority,
    notBefore: ts(t.notBefore),
    dependsOn: deps.map((d) => d.workItemId),
    retryPolicy: {
      maxRetries: t.maxRetries,
      backoffBase: durationFromMs(t.backoffBaseMs),
      backoffCap: durationFromMs(t.backoffCapMs),
      jitter: t.jitter === "NONE" ? RetryPolicy_Jitter.NONE : RetryPolicy_Jitter.FULL,
    },
    attempt: t.attempt,
    state: TaskState[t.state],
    waitReasons: reasons.map((r) => ({
      kind: WaitReason_Kind[r.kind],
      detail: r.detail,
      until: r.until ? timestampFromDate(r.until) : undefined,
      workItemIds: r.workItemIds ?? [],
    })),
    dependencyFailurePolicy: DependencyFailurePolicy[t.dependencyFailurePolicy],
    agentSelector: t.agentSelector,
    lastRunId: t.lastRunId,
    lastError: t.lastError,
    scheduledBy: t.scheduledBy,
    createTime: ts(t.createTime),
    updateTime: ts(t.updateTime),
    readyTime: ts(t.readyTime),
    dispatchTime: ts(t.dispatchTime),
    finishTime: ts(t.finishTime),
    etag: taskEtag(t),
  });
}

/** Messages for several tasks, their dependencies read in one query. */
export async function taskMessages(db: Db, tasks: readonly TaskRow[]): Promise<ScheduledTask[]> {
  const deps = await dependenciesOf(
    db,
    tasks.map((t) => t.id),
  );
  const now = new Date();
  return tasks.map((t) => taskMessage(t, deps.get(t.id) ?? [], now));
}
