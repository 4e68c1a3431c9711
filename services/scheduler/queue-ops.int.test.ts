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

/**
 * Waits until the workitem service has relayed what it committed and the scheduler has handled
 * (and relayed the outcome of) every ScheduleWorkItem command sent for `id`; returns how many
 * commands there were and the ScheduleWorkItemRejected events published for the item.
 */
async function commandsSettled(id: string) {
  const relayed = async (pool: { query: (sql: string) => Promise<{ rows: { n: number }[] }> }) =>
    (await pool.query("SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL")).rows[0]?.n;
  await until(
    "workitem outbox relayed",
    () => relayed(s.workitem.running.host.pool),
    (n) => n === 0,
  );
  const jsm = await jetstreamManager(s.nc);
  const subject = s.subjects.command("scheduler", "ScheduleWorkItem");
  const commands = (await readStream(jsm, s.subjects.streams.commands)).filter(
    (m) =>
      m.subject === subject &&
      unpackPayload(decodeEnvelope(m.data), ScheduleWorkItemSchema)?.workItemId === id,
  );
  const last = Math.max(0, ...commands.map((m) => m.seq));
  await until(
    "commands handled",
    async () =>
      (await jsm.consumers.info(s.subjects.streams.commands, "scheduler-schedule-command")).ack_floor,
    (floor) => floor.stream_seq >= last,
  );
  await until(
    "scheduler outbox relayed",
    () => relayed(s.schedulers[0]!.running.host.pool),
    (n) => n === 0,
  );
  const rejections = (await readStream(jsm, s.subjects.streams.events))
    .map((m) => unpackPayload(decodeEnvelope(m.data), ScheduleWorkItemRejectedSchema))
    .filter((e) => e?.workItemId === id);
  return { commands: commands.length, rejections };
}

/**
 * A retry of a FAILED item schedules exactly one new task however it is asked for. RequeueTask
 * and ScheduleWorkItem move the item FAILED -> QUEUED through the scheduler's own effects; that
 * move must not come back as a ScheduleWorkItem command (ALREADY_SCHEDULED noise while the task is
 * live, a second run once it has ended). A person's FAILED -> QUEUED is what the command is for.
 */
describe("retrying a FAILED item", () => {
  const succeed = () => ({ outcome: "SUCCEEDED" as const, afterMs: 10 });
  afterAll(() => {
    s.am.behaviour = succeed;
  });
  /** Schedules `id` with no retries and lets its first run fail: task and item end FAILED. */
  async function failOnce(id: string) {
    let first: string | undefined;
    s.am.behaviour = (req) => {
      if (req.workItemId === id) first ??= req.taskId;
      const fails = req.taskId === first && req.attempt === 1;
      return fails ? { outcome: "FAILED", error: "exit 1" } : succeed();
    };
    const { task } = await s
      .sched()
      .scheduleWorkItem({ workItemId: id, options: { retryPolicy: { maxRetries: 0 } } });
    const failed = await taskIn(task?.id ?? "", TaskState.FAILED);
    await until(
      "item FAILED",
      () => itemState(id),
      (st) => st === WorkItemState.FAILED,
    );
    return failed;
  }

  it("requeueing the FAILED task runs it once more and is not echoed back as a rejected command", async () => {
    const id = await s.newItem("requeue after failure");
    const failed = await failOnce(id);
    const { task } = await s.sched().requeueTask({ taskId: failed.id, reason: "flake" });
    expect(task?.state).not.toBe(TaskState.FAILED);
    await taskIn(failed.id, TaskState.SUCCEEDED);
    await until(
      "item DONE",
      () => itemState(id),
      (st) => st === WorkItemState.DONE,
    );
    const { rejections } = await commandsSettled(id);
    expect(rejections).toEqual([]);
    const tasks = (await s.sched().listTasks({ workItemId: id })).tasks;
    expect(tasks.map((t) => [t.id, t.state])).toEqual([[failed.id, TaskState.SUCCEEDED]]);
    expect(s.am.callsFor(failed.id).map((c) => c.req.attempt)).toEqual([1, 2]);
  });

  it("a requeued run that fails again leaves the item FAILED, even when commands lag behind", async () => {
    const id = await s.newItem("requeue fails again");
    const failed = await failOnce(id);
    s.am.behaviour = (req) => (req.workItemId === id ? { outcome: "FAILED", error: "exit 2" } : succeed());
    // Hold the scheduler's idempotency table, as a command consumer with a backlog would lag:
    // anything asked of it by command is read only after the requeued run has ended.
    const lag = await s.schedulers[0]!.running.host.pool.connect();
    try {
      await lag.query("BEGIN");
      await lag.query("LOCK TABLE idempotency IN ACCESS EXCLUSIVE MODE");
      await s.sched().requeueTask({ taskId: failed.id, reason: "flake" });
      await until(
        "requeued run failed",
        async () => s.am.completions.filter((c) => c.taskId === failed.id).length,
        (n) => n === 2,
      );
      await taskIn(failed.id, TaskState.FAILED);
    } finally {
      await lag.query("COMMIT");
      lag.release();
    }
    await until(
      "item FAILED again",
      () => itemState(id),
      (st) => st === WorkItemState.FAILED,
    );
    const { rejections } = await commandsSettled(id);
    expect(rejections).toEqual([]);
    // One retry was asked for and one was run: no second task, and the item stays FAILED.
    const tasks = (await s.sched().listTasks({ workItemId: id })).tasks;
    expect(tasks.map((t) => [t.id, t.state])).toEqual([[failed.id, TaskState.FAILED]]);
    expect(s.am.calls.filter((c) => c.req.workItemId === id)).toHaveLength(2);
    expect(await itemState(id)).toBe(WorkItemState.FAILED);
  });

  it("scheduling the FAILED item again through the RPC makes one new task and no rejection", async () => {
    const id = await s.newItem("rescheduled after failure");
    const failed = await failOnce(id);
    const { task } = await s.sched().scheduleWorkItem({ workItemId: id });
    await taskIn(task?.id ?? "", TaskState.SUCCEEDED);
    await until(
      "item DONE",
      () => itemState(id),
      (st) => st === WorkItemState.DONE,
    );
    const { rejections } = await commandsSettled(id);
    expect(rejections).toEqual([]);
    const tasks = (await s.sched().listTasks({ workItemId: id })).tasks;
    expect(tasks.map((t) => t.id).sort()).toEqual([failed.id, task?.id].sort());
  });

  it("a person moving the FAILED item back to QUEUED gets exactly one new task, from the command", async () => {
    const id = await s.newItem("retried by a person");
    const failed = await failOnce(id);
    await s.items().transitionWorkItem({ workItemId: id, toState: WorkItemState.QUEUED, reason: "retry" });
    const tasks = await until(
      "task from the retry",
      async () => (await s.sched().listTasks({ workItemId: id })).tasks,
      (t) => t.length === 2,
    );
    const retry = tasks.find((t) => t.id !== failed.id);
    await taskIn(retry?.id ?? "", TaskState.SUCCEEDED);
    await until(
      "item DONE",
      () => itemState(id),
      (st) => st === WorkItemState.DONE,
    );
    const settled = await commandsSettled(id);
    expect(settled.commands).toBe(1);
    expect(settled.rejections).toEqual([]);
    expect(retry?.scheduledBy).toBe("alice");
    expect((await s.sched().listTasks({ workItemId: id })).tasks).toHaveLength(2);
  });
});
