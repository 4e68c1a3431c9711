import { randomUUID } from "node:crypto";
import { durationMs, timestampDate, timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { EventEnvelope } from "../../gen/codex/events/v1/envelope_pb.js";
import { TaskReadySchema, TaskRetryScheduledSchema } from "../../gen/codex/events/v1/scheduler_events_pb.js";
import {
  DependencyFailurePolicy,
  type ScheduledTask,
  TaskState,
  WaitReason_Kind,
} from "../../gen/codex/scheduler/v1/task_pb.js";
import { WorkItemState } from "../../gen/codex/workitem/v1/work_item_pb.js";
import { ErrorInfoSchema, PreconditionFailureSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Code, ServiceError } from "../../mesh/errors.js";
import { decodeEnvelope, unpackPayload } from "../../mesh/events/envelope.js";
import { readStream } from "../../mesh/nats/testing.js";
import { type Stack, startStack, until } from "./test-stack.js";

let s: Stack;
beforeAll(async () => {
  // One dispatch at a time, so queue order is observable in the order of EnqueueRun calls.
  s = await startStack({ schedulerEnv: { DISPATCH_CONCURRENCY: "1" } });
});
afterAll(async () => s?.cleanup());
afterEach(() => {
  s.am.behaviour = () => ({ outcome: "SUCCEEDED", afterMs: 10 });
  s.am.enqueueDelay = () => 0;
});

async function schedule(workItemId: string, options: Record<string, unknown> = {}): Promise<ScheduledTask> {
  const { task } = await s.sched().scheduleWorkItem({ workItemId, options });
  if (!task) throw new Error("no task");
  return task;
}
const getTask = (id: string) => s.task(id);
const taskIn = (id: string, state: TaskState, ms?: number) => s.taskIn(id, state, ms);
const itemIn = (id: string, state: WorkItemState, ms = 10_000) =>
  until(
    `work item ${id} ${WorkItemState[state]}`,
    async () => (await s.items().getWorkItem({ workItemId: id })).workItem?.state,
    (st) => st === state,
    ms,
  );
async function failure(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (err) {
    return ServiceError.from(err);
  }
  throw new Error("expected the call to fail");
}
const firstCall = (taskId: string) => s.am.callsFor(taskId)[0]?.at ?? Number.NaN;

describe("dependencies", () => {
  it("runs a diamond in dependency order and shows what each task waits for", async () => {
    const [a, b, c, d] = await Promise.all(["a", "b", "c", "d"].map((n) => s.newItem(`diamond ${n}`)));
    s.am.behaviour = () => ({ outcome: "SUCCEEDED", afterMs: 50 });
    const td = await schedule(d as string, { dependsOn: [b, c] });
    expect(td.state).toBe(TaskState.WAITING);
    expect(td.waitReasons.map((r) => r.kind)).toEqual([WaitReason_Kind.DEPENDENCIES]);
    expect(td.waitReasons[0]?.workItemIds).toEqual([b, c]);
    const tb = await schedule(b as string, { dependsOn: [a] });
    const tc = await schedule(c as string, { dependsOn: [a] });
    const ta = await schedule(a as string);
    for (const t of [ta, tb, tc, td]) await taskIn(t.id, TaskState.SUCCEEDED);
    const doneAt = (id: string) => s.am.completions.find((x) => x.taskId === id)?.at ?? Number.NaN;
    expect(firstCall(tb.id)).toBeGreaterThanOrEqual(doneAt(ta.id));
    expect(firstCall(tc.id)).toBeGreaterThanOrEqual(doneAt(ta.id));
    expect(firstCall(td.id)).toBeGreaterThanOrEqual(Math.max(doneAt(tb.id), doneAt(tc.id)));
    for (const id of [a, b, c, d]) await itemIn(id as string, WorkItemState.DONE);
  });

  it("refuses a cycle and names it", async () => {
    const [x, y, z] = await Promise.all(["x", "y", "z"].map((n) => s.newItem(`cycle ${n}`)));
    const tx = await schedule(x as string, {
      dependsOn: [y],
      notBefore: timestampFromMs(Date.now() + 3_600_000),
    });
    const err = await failure(schedule(y as string, { dependsOn: [x] }));
    expect(err.code).toBe(Code.FAILED_PRECONDITION);
    const info = err.findDetail(ErrorInfoSchema);
    expect(info?.reason).toBe("DEPENDENCY_CYCLE");
    expect(info?.domain).toBe("codex.scheduler.v1");
    expect(info?.metadata.cycle).toBe(`${y} -> ${x} -> ${y}`);
    expect(err.findDetail(PreconditionFailureSchema)?.violations[0]?.type).toBe("DEPENDENCY_CYCLE");
    const self = await failure(schedule(z as string, { dependsOn: [z] }));
    expect(self.findDetail(ErrorInfoSchema)?.metadata.cycle).toBe(`${z} -> ${z}`);
    const unknown = await failure(schedule(z as string, { dependsOn: [randomUUID()] }));
    expect([unknown.code, unknown.reason]).toEqual([Code.INVALID_ARGUMENT, "UNKNOWN_DEPENDENCY"]);
    const again = await failure(schedule(x as string));
    expect([again.code, again.reason]).toEqual([Code.ALREADY_EXISTS, "ALREADY_SCHEDULED"]);
    await s.sched().cancelTask({ taskId: tx.id, reason: "test done" });
  });

  it("fails dependents under FAIL_DEPENDENTS (cascading) and blocks them under BLOCK_DEPENDENTS", async () => {
    const [a, b, c, d] = await Promise.all(["a", "b", "c", "d"].map((n) => s.newItem(`fail ${n}`)));
    let failA = true;
    s.am.behaviour = (req) =>
      req.workItemId === a && failA
        ? { outcome: "FAILED", error: "exit 1" }
        : { outcome: "SUCCEEDED", afterMs: 10 };
    const tb = await schedule(b as string, { dependsOn: [a] });
    const tc = await schedule(c as string, { dependsOn: [b] });
    const td = await schedule(d as string, {
      dependsOn: [a],
      dependencyFailurePolicy: DependencyFailurePolicy.BLOCK_DEPENDENTS,
    });
    const ta = await schedule(a as string, { retryPolicy: { maxRetries: 0 } });
    await taskIn(ta.id, TaskState.FAILED);
    const failedB = await taskIn(tb.id, TaskState.FAILED);
    expect(failedB.lastError).toBe(`dependency ${a} FAILED`);
    await taskIn(tc.id, TaskState.FAILED);
    await itemIn(b as string, WorkItemState.FAILED);
    await itemIn(c as string, WorkItemState.FAILED);
    await itemIn(d as string, WorkItemState.BLOCKED);
    const blocked = await getTask(td.id);
    expect(blocked.state).toBe(TaskState.WAITING);
    expect(blocked.waitReasons[0]?.detail).toContain("blocked");
    expect(s.am.callsFor(td.id)).toHaveLength(0);
    failA = false;
    await s.sched().requeueTask({ taskId: ta.id, reason: "fixed" });
    await taskIn(ta.id, TaskState.SUCCEEDED);
    await taskIn(td.id, TaskState.SUCCEEDED);
    await itemIn(d as string, WorkItemState.DONE);
    expect(s.am.callsFor(tb.id)).toHaveLength(0);
  });
});

describe("queue order and timing", () => {
  it("dispatches by priority, then by ready time", async () => {
    const [blocker, a, b, c] = await Promise.all(
      ["blocker", "a", "b", "c"].map((n) => s.newItem(`order ${n}`)),
    );
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    // The single dispatch slot stays busy with the blocker while the others queue up.
    s.am.enqueueDelay = (req) => (req.workItemId === blocker ? gate : 0);
    const tBlock = await schedule(blocker as string);
    await taskIn(tBlock.id, TaskState.DISPATCHED);
    const ta = await schedule(a as string, { priority: 0 });
    const tb = await schedule(b as string, { priority: 5 });
    const tc = await schedule(c as string, { priority: 0 });
    const queued = await s.sched().listTasks({ projectId: s.projectId, states: [TaskState.READY] });
    expect(queued.tasks.map((t) => t.id)).toEqual([tb.id, ta.id, tc.id]);
    release();
    for (const t of [tBlock, ta, tb, tc]) await taskIn(t.id, TaskState.SUCCEEDED);
    const order = s.am.calls.map((x) => x.req.taskId).filter((id) => [ta.id, tb.id, tc.id].includes(id));
    expect(order).toEqual([tb.id, ta.id, tc.id]);
  });

  it("waits for not_before before dispatching", async () => {
    const id = await s.newItem("delayed");
    const notBefore = Date.now() + 1_200;
    const t = await schedule(id, { notBefore: timestampFromMs(notBefore) });
    expect(t.state).toBe(TaskState.WAITING);
    expect(t.waitReasons[0]?.kind).toBe(WaitReason_Kind.DELAY);
    expect(t.waitReasons[0]?.until && timestampDate(t.waitReasons[0].until).getTime()).toBe(notBefore);
    await taskIn(t.id, TaskState.SUCCEEDED);
    expect(firstCall(t.id)).toBeGreaterThanOrEqual(notBefore);
  });

  it("applies outcomes that arrive before the dispatcher recorded the run, on every attempt", async () => {
    const id = await s.newItem("fast agent manager");
    s.am.behaviour = (req) =>
      req.attempt === 1
        ? { outcome: "FAILED", error: "first try fails", beforeReply: true }
        : { outcome: "SUCCEEDED", beforeReply: true };
    const t = await schedule(id, { retryPolicy: { maxRetries: 1, backoffBase: { seconds: 1n } } });
    const done = await taskIn(t.id, TaskState.SUCCEEDED);
    expect(done.attempt).toBe(2);
    expect(done.lastRunId).toBe(s.am.callsFor(t.id)[1]?.run.id);
  });

  it("retries failed runs with full-jitter backoff within the policy's bounds, then fails task and item", async () => {
    const id = await s.newItem("flaky");
    s.am.behaviour = () => ({ outcome: "FAILED", error: "step 2 exited 1" });
    const policy = {
      maxRetries: 2,
      backoffBase: { seconds: 1n },
      backoffCap: { seconds: 1n, nanos: 500_000_000 },
    };
    const t = await schedule(id, { retryPolicy: policy });
    const failed = await taskIn(t.id, TaskState.FAILED, 15_000);
    expect(failed.attempt).toBe(3);
    expect(failed.lastError).toBe("step 2 exited 1");
    await itemIn(id, WorkItemState.FAILED);
    const calls = s.am.callsFor(t.id);
    const done = s.am.completions.filter((x) => x.taskId === t.id);
    expect(calls.map((x) => x.req.attempt)).toEqual([1, 2, 3]);
    const ceilings = [1_000, 1_500];
    // End to end (failure published -> next EnqueueRun), with room for event delivery and the
    // dispatch's own calls on a loaded machine.
    for (const n of [1, 2]) {
      const waited = (calls[n]?.at ?? 0) - (done[n - 1]?.at ?? 0);
      expect(waited).toBeGreaterThanOrEqual(0);
      expect(waited).toBeLessThanOrEqual((ceilings[n - 1] ?? 0) + 1_500);
    }
    // Inside the scheduler: the drawn backoff is within [0, min(cap, base * 2^(n-1))], and the
    // task became READY no earlier than that backoff after the failure was applied.
    const { jsm } = s.schedulers[0]!.running.host.nats;
    const envelopes = (await readStream(jsm, s.subjects.streams.events)).map((m) => decodeEnvelope(m.data));
    const at = (e: EventEnvelope) => (e.occurredAt ? timestampMs(e.occurredAt) : 0);
    const retries = envelopes.flatMap((e) => {
      const p = unpackPayload(e, TaskRetryScheduledSchema);
      return p?.taskId === t.id ? [{ p, at: at(e) }] : [];
    });
    const readies = envelopes.flatMap((e) => {
      const p = unpackPayload(e, TaskReadySchema);
      return p?.taskId === t.id ? [{ p, at: at(e) }] : [];
    });
    expect(retries.map((r) => r.p.nextAttempt)).toEqual([2, 3]);
    retries.forEach((r, i) => {
      const backoff = r.p.backoff ? durationMs(r.p.backoff) : -1;
      expect(backoff).toBeGreaterThanOrEqual(0);
      expect(backoff).toBeLessThanOrEqual(ceilings[i] ?? 0);
      const ready = readies.find((x) => x.p.nextAttempt === r.p.nextAttempt);
      const waited = (ready?.at ?? 0) - r.at;
      expect(waited).toBeGreaterThanOrEqual(backoff - 50);
      expect(waited).toBeLessThanOrEqual(backoff + 750);
    });
  });
});

describe("metrics", () => {
  /** A series summed over every scheduler replica of the stack. */
  async function series(name: string, labels: Record<string, string> = {}): Promise<number> {
    let sum = 0;
    for (const r of s.schedulers) {
      const metric = await r.running.host.metrics.registry.getSingleMetric(name)?.get();
      for (const v of metric?.values ?? []) {
        const match = Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want);
        // A histogram's values are its buckets, sum and count: count the observations.
        const metricName = (v as { metricName?: string }).metricName;
        if (match && (metricName === undefined || metricName === `${name}_count`)) sum += v.value;
      }
    }
    return sum;
  }

  it("counts dispatches by outcome, their duration, and run outcomes by result", async () => {
    const before = {
      enqueued: await series("scheduler_dispatches_total", { outcome: "enqueued" }),
      seconds: await series("scheduler_dispatch_seconds"),
      succeeded: await series("scheduler_run_outcomes_total", { result: "SUCCEEDED" }),
      failed: await series("scheduler_run_outcomes_total", { result: "FAILED" }),
    };
    const ok = await schedule(await s.newItem("metrics ok"));
    await taskIn(ok.id, TaskState.SUCCEEDED);
    s.am.behaviour = () => ({ outcome: "FAILED", error: "exit 1" });
    const bad = await schedule(await s.newItem("metrics bad"), { retryPolicy: { maxRetries: 0 } });
    await taskIn(bad.id, TaskState.FAILED);
    expect((await series("scheduler_dispatches_total", { outcome: "enqueued" })) - before.enqueued).toBe(2);
    expect((await series("scheduler_dispatch_seconds")) - before.seconds).toBe(2);
    expect((await series("scheduler_run_outcomes_total", { result: "SUCCEEDED" })) - before.succeeded).toBe(
      1,
    );
    expect((await series("scheduler_run_outcomes_total", { result: "FAILED" })) - before.failed).toBe(1);
    // Nothing is left READY, and the gauge reads the index at scrape time.
    expect(await series("scheduler_ready_tasks")).toBe(0);
  });
});
