import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActorType } from "../../gen/codex/events/v1/envelope_pb.js";
import {
  ScheduleWorkItemRejectedSchema,
  ScheduleWorkItemSchema,
} from "../../gen/codex/events/v1/scheduler_events_pb.js";
import { TaskState, WaitReason_Kind } from "../../gen/codex/scheduler/v1/task_pb.js";
import { ApprovalStatus, WorkItemState } from "../../gen/codex/workitem/v1/work_item_pb.js";
import { Code, ServiceError } from "../../mesh/errors.js";
import { decodeEnvelope, encodeEnvelope, newEnvelope, unpackPayload } from "../../mesh/events/envelope.js";
import { publish } from "../../mesh/nats/publisher.js";
import { readStream } from "../../mesh/nats/testing.js";
import { type Stack, startStack, until } from "./test-stack.js";

let s: Stack;
beforeAll(async () => {
  // Short claim leases, so a stalled dispatch is handed back within the test.
  s = await startStack({ schedulerEnv: { DISPATCH_LEASE: "1500ms", RECONCILE_INTERVAL: "300ms" } });
});
afterAll(async () => s?.cleanup());

const getTask = (id: string) => s.task(id);
const taskIn = (id: string, state: TaskState, ms?: number) => s.taskIn(id, state, ms);
const itemState = async (id: string) => (await s.items().getWorkItem({ workItemId: id })).workItem?.state;
async function failure(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (err) {
    return ServiceError.from(err);
  }
  throw new Error("expected the call to fail");
}

describe("approval gating", () => {
  it("keeps risky work WAITING for APPROVAL until it is approved, then runs it", async () => {
    const id = await s.newItem("deploy to production", { risky: true });
    const wi = (await s.items().getWorkItem({ workItemId: id })).workItem;
    expect(wi?.state).toBe(WorkItemState.PROPOSED);
    const { task } = await s.sched().scheduleWorkItem({ workItemId: id });
    expect(task?.state).toBe(TaskState.WAITING);
    expect(task?.waitReasons.map((r) => r.kind)).toEqual([WaitReason_Kind.APPROVAL]);
    await new Promise((r) => setTimeout(r, 600));
    expect(s.am.callsFor(task?.id ?? "")).toHaveLength(0);
    expect((await getTask(task?.id ?? "")).state).toBe(TaskState.WAITING);
    await s
      .items(s.people.bob)
      .approveRequest({ approvalRequestId: wi?.approvalRequestId ?? "", reason: "ok" });
    await taskIn(task?.id ?? "", TaskState.SUCCEEDED);
    const after = (await s.items().getWorkItem({ workItemId: id })).workItem;
    expect(after?.approvalStatus).toBe(ApprovalStatus.APPROVED);
    await until(
      "item DONE",
      () => itemState(id),
      (st) => st === WorkItemState.DONE,
    );
  });
});

describe("requeue, cancel and inspection", () => {
  it("requeues a delayed task with a new priority to run now", async () => {
    const id = await s.newItem("requeue me");
    const { task } = await s.sched().scheduleWorkItem({
      workItemId: id,
      options: { notBefore: timestampFromMs(Date.now() + 3_600_000), priority: 1 },
    });
    expect(task?.waitReasons[0]?.kind).toBe(WaitReason_Kind.DELAY);
    await until(
      "item QUEUED",
      () => itemState(id),
      (st) => st === WorkItemState.QUEUED,
    );
    const stale = await failure(s.sched().requeueTask({ taskId: task?.id ?? "", etag: "stale" }));
    expect([stale.code, stale.reason]).toEqual([Code.ABORTED, "ETAG_MISMATCH"]);
    const { task: requeued } = await s
      .sched()
      .requeueTask({ taskId: task?.id ?? "", priority: 9, etag: task?.etag ?? "" });
    expect(requeued?.priority).toBe(9);
    await taskIn(task?.id ?? "", TaskState.SUCCEEDED);
  });

  it("cancels a waiting task, returns its item to APPROVED, and refuses what the contract refuses", async () => {
    const id = await s.newItem("cancel me");
    const { task } = await s.sched().scheduleWorkItem({
      workItemId: id,
      options: { notBefore: timestampFromMs(Date.now() + 3_600_000) },
    });
    const taskId = task?.id ?? "";
    await until(
      "item QUEUED",
      () => itemState(id),
      (st) => st === WorkItemState.QUEUED,
    );
    const viewer = await failure(s.sched(s.people.viewer).cancelTask({ taskId }));
    expect(viewer.code).toBe(Code.PERMISSION_DENIED);
    const outsider = await failure(s.sched(s.people.outsider).getTask({ taskId }));
    expect(outsider.code).toBe(Code.NOT_FOUND);
    expect((await s.sched(s.people.viewer).getTask({ taskId })).task?.id).toBe(taskId);
    const { task: cancelled } = await s.sched().cancelTask({ taskId, reason: "not needed" });
    expect(cancelled?.state).toBe(TaskState.CANCELLED);
    expect((await s.sched().cancelTask({ taskId })).task?.state).toBe(TaskState.CANCELLED);
    const requeue = await failure(s.sched().requeueTask({ taskId }));
    expect([requeue.code, requeue.reason]).toEqual([Code.FAILED_PRECONDITION, "WRONG_STATE"]);
    await until(
      "item APPROVED",
      () => itemState(id),
      (st) => st === WorkItemState.APPROVED,
    );
    // Scheduling again is allowed once the previous task ended.
    const { task: again } = await s.sched().scheduleWorkItem({ workItemId: id });
    await taskIn(again?.id ?? "", TaskState.SUCCEEDED);
    const history = await s.sched().listTasks({ workItemId: id });
    expect(history.tasks.map((t) => t.state).sort()).toEqual(
      [TaskState.SUCCEEDED, TaskState.CANCELLED].sort(),
    );
  });

  it("cancels the task when its work item is cancelled", async () => {
    const id = await s.newItem("item cancelled");
    const { task } = await s.sched().scheduleWorkItem({
      workItemId: id,
      options: { notBefore: timestampFromMs(Date.now() + 3_600_000) },
    });
    await s.items().cancelWorkItem({ workItemId: id, reason: "changed my mind" });
    await taskIn(task?.id ?? "", TaskState.CANCELLED);
  });

  it("pages through the queue in order", async () => {
    const ids = await Promise.all([1, 2, 3].map((i) => s.newItem(`page ${i}`)));
    const later = timestampFromMs(Date.now() + 3_600_000);
    for (const [i, id] of ids.entries()) {
      await s.sched().scheduleWorkItem({ workItemId: id, options: { priority: 100 + i, notBefore: later } });
    }
    const first = await s
      .sched()
      .listTasks({ projectId: s.projectId, states: [TaskState.WAITING], pageSize: 2 });
    const second = await s.sched().listTasks({
      projectId: s.projectId,
      states: [TaskState.WAITING],
      pageSize: 2,
      pageToken: first.nextPageToken,
    });
    const seen = [...first.tasks, ...second.tasks].map((t) => t.priority);
    expect(seen.slice(0, 3)).toEqual([102, 101, 100]);
    const bad = await failure(
      s.sched().listTasks({ projectId: s.projectId, pageToken: first.nextPageToken }),
    );
    expect(bad.code).toBe(Code.INVALID_ARGUMENT);
  });
});

describe("crash safety of dispatch", () => {
  it("hands back a claim whose dispatcher stalls, and replays it without a second run", async () => {
    const id = await s.newItem("stalled dispatch");
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let first = true;
    s.am.enqueueDelay = () => {
      if (!first) return 0;
      first = false;
      return gate;
    };
    s.am.behaviour = () => "hold";
    const { task } = await s.sched().scheduleWorkItem({ workItemId: id });
    const taskId = task?.id ?? "";
    // The first EnqueueRun hangs past DISPATCH_LEASE; the reconciler hands the claim back and
    // the task is dispatched again with the same attempt, which the agent manager answers
    // with the same run.
    const calls = await until(
      "claim replayed",
      async () => s.am.callsFor(taskId),
      (c) => c.length === 2,
      15_000,
    );
    expect(calls.map((c) => c.req.attempt)).toEqual([1, 1]);
    expect(calls[1]?.run.id).toBe(calls[0]?.run.id);
    release();
    const run = calls[0]?.run;
    await until(
      "dispatch recorded",
      () => getTask(taskId),
      (t) => t.lastRunId === run?.id,
    );
    if (run) await s.am.complete(run, "SUCCEEDED");
    const done = await taskIn(taskId, TaskState.SUCCEEDED);
    expect(done.attempt).toBe(1);
    expect(s.am.cancels).not.toContain(run?.id);
    s.am.enqueueDelay = () => 0;
    s.am.behaviour = () => ({ outcome: "SUCCEEDED", afterMs: 10 });
  });
});

describe("the ScheduleWorkItem command", () => {
  it("schedules from the command, and publishes a rejection for a refused one", async () => {
    const id = await s.newItem("by command");
    const nc = s.nc;
    const send = async (payload: Parameters<typeof create<typeof ScheduleWorkItemSchema>>[1]) => {
      const env = newEnvelope({
        schema: ScheduleWorkItemSchema,
        payload: create(ScheduleWorkItemSchema, payload),
        aggregateType: "work_item",
        aggregateId: payload?.workItemId || "none",
        projectId: s.projectId,
        actor: { type: ActorType.SERVICE, id: "workitem" },
        source: "workitem",
      });
      await publish(jetstream(nc), s.subjects.command("scheduler", "ScheduleWorkItem"), encodeEnvelope(env), {
        msgId: env.id,
      });
    };
    await send({ workItemId: id, priority: 3, scheduledBy: "alice" });
    const listed = await until(
      "task from command",
      async () => (await s.sched().listTasks({ workItemId: id })).tasks,
      (t) => t.length === 1,
    );
    expect(listed[0]?.scheduledBy).toBe("alice");
    expect(listed[0]?.priority).toBe(3);
    await taskIn(listed[0]?.id ?? "", TaskState.SUCCEEDED);
    const other = await s.newItem("refused by command");
    await send({ workItemId: other, dependencies: [randomUUID()], requestId: "refused-1" });
    const jsm = await jetstreamManager(nc);
    await until(
      "rejection event",
      async () =>
        (await readStream(jsm, s.subjects.streams.events))
          .map((m) => unpackPayload(decodeEnvelope(m.data), ScheduleWorkItemRejectedSchema))
          .filter((e) => e?.requestId === "refused-1"),
      (found) => found.length === 1 && found[0]?.status?.code === Code.INVALID_ARGUMENT,
    );
  });
});
