import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Registry } from "prom-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ScheduledTask, TaskState, WaitReason_Kind } from "../../gen/codex/scheduler/v1/task_pb.js";
import { createRedis, type Redis } from "../../mesh/redis.js";
import { REDIS_URL } from "../../test/support/harness.js";
import { type Stack, startStack, until } from "./test-stack.js";

/** A Redis database of its own, so FLUSHDB here touches no other test's keys. */
const REDIS_DB_URL = `${REDIS_URL}/11`;

let s: Stack;
let redis: Redis;
beforeAll(async () => {
  s = await startStack({
    replicas: 2,
    schedulerEnv: { REDIS_URL: REDIS_DB_URL, DISPATCH_CONCURRENCY: "2" },
    projectEnv: { DEFAULT_RUNS_PER_DAY: "0", DEFAULT_MAX_CONCURRENT_RUNS: "0" },
  });
  redis = createRedis(REDIS_DB_URL);
});
afterAll(async () => {
  redis?.disconnect();
  await s?.cleanup();
});
afterEach(() => {
  s.am.behaviour = () => ({ outcome: "SUCCEEDED", afterMs: 10 });
  s.am.enqueueDelay = () => 0;
});

const svc = () => s.sched(s.people.service);
const tasksOf = async (projectId: string, states: TaskState[] = []) =>
  (await svc().listTasks({ projectId, states, pageSize: 500 })).tasks;
const allIn = (ids: readonly string[], state: TaskState, ms = 15_000) =>
  until(
    `${ids.length} tasks ${TaskState[state]}`,
    async () =>
      Promise.all(ids.map(async (id) => (await svc().getTask({ taskId: id })).task as ScheduledTask)),
    (ts) => ts.every((t) => t.state === state),
    ms,
  );

describe("quota", () => {
  it("keeps work queued while the project's quota is exhausted and resumes it as slots free", async () => {
    const projectId = await s.newProject({ maxConcurrentRuns: 1 });
    s.am.behaviour = () => "hold";
    const items = await Promise.all([1, 2, 3].map((i) => s.newItem(`quota ${i}`, { projectId })));
    const tasks: string[] = [];
    for (const id of items) tasks.push((await svc().scheduleWorkItem({ workItemId: id })).task?.id ?? "");
    const usage = async () => (await s.projects().getQuota({ projectId })).usage?.concurrentInUse ?? -1;
    for (let round = 1; round <= 3; round++) {
      await until(
        "one run held",
        async () => s.am.held(),
        (held) => held.length === 1,
      );
      if (round < 3) {
        const waiting = await until(
          "the others wait for QUOTA",
          () => tasksOf(projectId, [TaskState.WAITING]),
          (ts) =>
            ts.length === 3 - round &&
            ts.every((t) => t.waitReasons.some((r) => r.kind === WaitReason_Kind.QUOTA)),
        );
        expect(waiting[0]?.waitReasons.find((r) => r.kind === WaitReason_Kind.QUOTA)?.detail).toContain(
          "max_concurrent_runs",
        );
      }
      expect(await usage()).toBe(1);
      await new Promise((r) => setTimeout(r, 300));
      expect(s.am.held()).toHaveLength(1);
      const run = s.am.held()[0];
      if (run) await s.am.complete(run, "SUCCEEDED");
    }
    await allIn(tasks, TaskState.SUCCEEDED);
    await until("slots released", usage, (n) => n === 0);
    expect(s.am.calls.filter((c) => tasks.includes(c.req.taskId))).toHaveLength(3);
  });
});

describe("Redis is only an index", () => {
  it("loses nothing when Redis is flushed while work is queued and delayed", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    s.am.enqueueDelay = () => gate;
    const ready = await Promise.all(Array.from({ length: 8 }, (_, i) => s.newItem(`flush ready ${i}`)));
    const delayed = await Promise.all(Array.from({ length: 3 }, (_, i) => s.newItem(`flush delayed ${i}`)));
    // Far enough ahead that the delayed tasks are still delayed when Redis is flushed, even on a
    // busy CI machine where creating, scheduling and claiming the rest takes a couple of seconds.
    const notBefore = Date.now() + 5_000;
    const ids: string[] = [];
    for (const id of ready) ids.push((await s.sched().scheduleWorkItem({ workItemId: id })).task?.id ?? "");
    for (const id of delayed) {
      const options = { notBefore: timestampFromMs(notBefore) };
      ids.push((await s.sched().scheduleWorkItem({ workItemId: id, options })).task?.id ?? "");
    }
    // Two replicas x two dispatch slots are stuck in EnqueueRun; the rest sits in the index.
    await until(
      "4 claimed",
      () => tasksOf(s.projectId, [TaskState.DISPATCHED]),
      (ts) => ts.length === 4,
    );
    expect(await redis.exists(`${s.prefix}:scheduler:delayed`)).toBe(1);
    expect(await redis.zcard(`${s.prefix}:scheduler:ready:0`)).toBeGreaterThanOrEqual(4);
    await redis.flushdb();
    expect(await redis.dbsize()).toBe(0);
    release();
    await allIn(ids, TaskState.SUCCEEDED);
    for (const id of ids) expect(s.am.callsFor(id).map((c) => c.req.attempt)).toEqual([1]);
    for (const id of ids.slice(8)) expect(s.am.callsFor(id)[0]?.at).toBeGreaterThanOrEqual(notBefore);
    expect(await redis.exists(`${s.prefix}:scheduler:built`)).toBe(1);
  });
});

/** EnqueueRun calls a replica made (its own client metrics): both replicas must take part. */
async function enqueueRunsBy(registry: Registry): Promise<number> {
  const metric = await registry.getSingleMetric("grpc_client_handled_total")?.get();
  return (metric?.values ?? [])
    .filter((v) => String(v.labels.grpc_method).endsWith("/EnqueueRun"))
    .reduce((sum, v) => sum + v.value, 0);
}

describe("replicas", () => {
  it("never dispatches a task twice with two schedulers running", async () => {
    s.am.enqueueDelay = () => 5;
    const items = await Promise.all(Array.from({ length: 40 }, (_, i) => s.newItem(`replicas ${i}`)));
    const ids = await Promise.all(
      items.map(
        async (id, i) =>
          (await s.sched(s.people.alice, i % 2).scheduleWorkItem({ workItemId: id })).task?.id ?? "",
      ),
    );
    await until(
      "all enqueued",
      async () => s.am.calls.filter((c) => ids.includes(c.req.taskId)).length,
      (n) => n === 40,
      30_000,
    );
    await allIn(ids, TaskState.SUCCEEDED, 30_000);
    const calls = s.am.calls.filter((c) => ids.includes(c.req.taskId));
    expect(calls).toHaveLength(40);
    expect(new Set(calls.map((c) => c.req.taskId)).size).toBe(40);
    const perReplica = await Promise.all(
      s.schedulers.map((r) => enqueueRunsBy(r.running.host.metrics.registry)),
    );
    expect(perReplica.every((n) => n > 0)).toBe(true);
  });
});
