import { randomUUID } from "node:crypto";
import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../../gen/codex/agentmanager/v1/run_pb.js";
import { RunCompletedSchema, RunStartedSchema } from "../../gen/codex/events/v1/agent_events_pb.js";
import { ActorType } from "../../gen/codex/events/v1/envelope_pb.js";
import {
  TaskFailedSchema,
  TaskRetryScheduledSchema,
  TaskStartedSchema,
  TaskSucceededSchema,
} from "../../gen/codex/events/v1/scheduler_events_pb.js";
import { RetryPolicy_Jitter, type ScheduledTask, TaskState } from "../../gen/codex/scheduler/v1/task_pb.js";
import { WorkItemState } from "../../gen/codex/workitem/v1/work_item_pb.js";
import { decodeEnvelope, encodeEnvelope, newEnvelope, unpackPayload } from "../../mesh/events/envelope.js";
import type { ConsumedMessage } from "../../mesh/nats/consumer.js";
import { publish } from "../../mesh/nats/publisher.js";
import { readStream } from "../../mesh/nats/testing.js";
import type { Core } from "./core.js";
import { onRunCompletedBatch, onRunStartedBatch } from "./events/run-events.js";
import { schedulerCore } from "./service.js";
import { type Stack, startStack, until } from "./test-stack.js";

let s: Stack;
beforeAll(async () => {
  s = await startStack();
});
afterAll(async () => s?.cleanup());

const getTask = (id: string) => s.task(id);
const taskIn = (id: string, state: TaskState, ms?: number) => s.taskIn(id, state, ms);
const itemIn = (id: string, state: WorkItemState) =>
  until(
    `work item ${id} ${WorkItemState[state]}`,
    async () => (await s.items().getWorkItem({ workItemId: id })).workItem?.state,
    (st) => st === state,
  );

/** The scheduler replica's own parts, so a batch can be handed to the handler directly. */
function coreOf(): Core {
  return schedulerCore(s.schedulers[0]!.running.host, { promoter() {}, effects() {}, reconcile() {} });
}

let seq = 0;
/** A run event as the agent manager publishes it, as the consumer hands it over. */
function runEvent<D extends DescMessage>(
  schema: D,
  runId: string,
  payload: Omit<MessageShape<D>, "$typeName">,
): ConsumedMessage {
  const envelope = newEnvelope({
    schema,
    payload: create(schema, payload as never),
    aggregateType: "run",
    aggregateId: runId,
    projectId: s.projectId,
    actor: { type: ActorType.SERVICE, id: "agentmanager" },
    source: "agentmanager",
  });
  const name = schema.typeName.split(".").pop() ?? "";
  return {
    subject: s.subjects.event("run", name),
    data: encodeEnvelope(envelope),
    headers: {},
    deliveryCount: 1,
    seq: ++seq,
    msgId: envelope.id,
  };
}

const completed = (taskId: string, runId: string, attempt: number, status: RunState, error = "") =>
  runEvent(RunCompletedSchema, runId, {
    taskId,
    runId,
    attempt,
    status,
    error,
    workItemId: "",
    agentId: "a",
  });
const started = (taskId: string, runId: string, attempt: number) =>
  runEvent(RunStartedSchema, runId, { taskId, runId, attempt, workItemId: "", agentId: "a" });

async function schedulerEvents<D extends DescMessage>(schema: D, taskId: string) {
  const { jsm } = s.schedulers[0]!.running.host.nats;
  return (await readStream(jsm, s.subjects.streams.events))
    .map(
      (m) =>
        unpackPayload(decodeEnvelope(m.data), schema) as (MessageShape<D> & { taskId: string }) | undefined,
    )
    .filter((p) => p?.taskId === taskId);
}

describe("run events in batches", () => {
  it("applies a burst once per run, skips unknown and stale runs, and releases dependents", async () => {
    s.am.behaviour = () => "hold";
    const [a, b, c, d, e, f, g] = await Promise.all(
      ["a", "b", "c", "d", "e", "f", "g"].map((n) => s.newItem(`burst ${n}`)),
    );
    const schedule = async (workItemId: string, options: Record<string, unknown> = {}) =>
      (await s.sched().scheduleWorkItem({ workItemId, options })).task as ScheduledTask;
    const noRetry = { retryPolicy: { maxRetries: 0 } };
    const td = await schedule(d as string, { dependsOn: [a] });
    const te = await schedule(e as string, { dependsOn: [c] });
    const ta = await schedule(a as string, noRetry);
    const tb = await schedule(b as string, {
      retryPolicy: {
        maxRetries: 1,
        backoffBase: { seconds: 3600n },
        backoffCap: { seconds: 3600n },
        jitter: RetryPolicy_Jitter.NONE,
      },
    });
    const tc = await schedule(c as string, noRetry);
    const tf = await schedule(f as string);
    const tg = await schedule(g as string);
    // Each dispatched, its run recorded.
    const run: Record<string, string> = {};
    for (const t of [ta, tb, tc, tf, tg]) {
      const got = await until(
        `task ${t.id} run recorded`,
        () => getTask(t.id),
        (x) => x.state === TaskState.DISPATCHED && x.lastRunId !== "",
      );
      run[t.id] = got.lastRunId;
    }
    const aDone = completed(ta.id, run[ta.id]!, 1, RunState.SUCCEEDED);
    const burst = [
      aDone,
      completed(tb.id, run[tb.id]!, 1, RunState.FAILED, "exit 1"),
      aDone, // the same event again (same event id)
      completed(randomUUID(), randomUUID(), 1, RunState.SUCCEEDED), // not a task of ours
      completed("bench-task-1", randomUUID(), 1, RunState.SUCCEEDED), // not even a task id
      completed(tc.id, run[tc.id]!, 1, RunState.FAILED, "exit 2"),
      completed(tg.id, randomUUID(), 5, RunState.FAILED), // not the task's current run
      completed(ta.id, run[ta.id]!, 1, RunState.SUCCEEDED), // the same run, another event id
      // Enough runs of other tasks that the batch is split into transactions side by side.
      ...Array.from({ length: 100 }, () => completed(randomUUID(), randomUUID(), 1, RunState.FAILED)),
    ];
    const starts = [
      started(tf.id, run[tf.id]!, 1),
      started(tf.id, run[tf.id]!, 1),
      started(randomUUID(), "r", 1),
    ];
    const core = coreOf();
    await onRunStartedBatch(core, starts);
    await onRunCompletedBatch(core, burst);
    // Redelivered, the whole batch changes nothing.
    await onRunStartedBatch(core, starts);
    await onRunCompletedBatch(core, burst);

    expect((await getTask(ta.id)).state).toBe(TaskState.SUCCEEDED);
    const waiting = await getTask(tb.id);
    expect([waiting.state, waiting.attempt, waiting.lastError]).toEqual([TaskState.WAITING, 1, "exit 1"]);
    const failed = await getTask(tc.id);
    expect([failed.state, failed.lastError]).toEqual([TaskState.FAILED, "exit 2"]);
    const dependent = await getTask(te.id);
    expect([dependent.state, dependent.lastError]).toEqual([TaskState.FAILED, `dependency ${c} FAILED`]);
    expect((await getTask(tf.id)).state).toBe(TaskState.RUNNING);
    expect((await getTask(tg.id)).state).toBe(TaskState.DISPATCHED);
    // A's success released D, which the dispatcher then ran.
    await taskIn(td.id, TaskState.DISPATCHED);
    await itemIn(a as string, WorkItemState.DONE);
    await itemIn(e as string, WorkItemState.FAILED);

    // The same burst through the real consumers (as redeliveries would come): still once, all acked.
    const js = jetstream(s.nc);
    await Promise.all(
      [...starts, ...burst].map((m) => publish(js, m.subject, m.data, { msgId: randomUUID() })),
    );
    const consumers = ["scheduler-run-completed", "scheduler-run-started"];
    const { jsm } = s.schedulers[0]!.running.host.nats;
    await until(
      "run event consumers drained",
      async () => Promise.all(consumers.map((n) => jsm.consumers.info(s.subjects.streams.events, n))),
      (infos) => infos.every((i) => i.num_pending + i.num_ack_pending === 0),
    );
    expect(await schedulerEvents(TaskSucceededSchema, ta.id)).toHaveLength(1);
    expect(await schedulerEvents(TaskRetryScheduledSchema, tb.id)).toHaveLength(1);
    expect(await schedulerEvents(TaskFailedSchema, tc.id)).toHaveLength(1);
    expect(await schedulerEvents(TaskFailedSchema, te.id)).toHaveLength(1);
    expect(await schedulerEvents(TaskStartedSchema, tf.id)).toHaveLength(1);
    expect(await schedulerEvents(TaskFailedSchema, tg.id)).toHaveLength(0);
    expect((await getTask(tg.id)).state).toBe(TaskState.DISPATCHED);
  });
});
