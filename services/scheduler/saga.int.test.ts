import { randomUUID } from "node:crypto";
import { clone, create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SagaCompletedSchema } from "../../gen/codex/events/v1/scheduler_events_pb.js";
import {
  type SagaExecution,
  SagaState,
  SagaStepState,
  type StartWorkItemCreationRequest,
  StartWorkItemCreationRequestSchema,
} from "../../gen/codex/scheduler/v1/saga_pb.js";
import { TaskState } from "../../gen/codex/scheduler/v1/task_pb.js";
import { WorkItemKind } from "../../gen/codex/workitem/v1/work_item_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { Principal } from "../../mesh/context.js";
import { Code, ServiceError } from "../../mesh/errors.js";
import { decodeEnvelope, unpackPayload } from "../../mesh/events/envelope.js";
import { readStream } from "../../mesh/nats/testing.js";
import type { SagaHooks } from "./saga/runner.js";
import { type Stack, startStack, until } from "./test-stack.js";

const RECIPE = `tools:
  - name: jq
    version: "1.7"
    checksum: sha256:${"b".repeat(64)}
steps:
  - jq --version
`;

/** Test seams: make "notify" fail for chosen sagas; park chosen sagas right after an action. */
const failNotify = new Set<string>();
const parkAfter = new Map<string, { step: string; reached: () => void }>();
const hooks: SagaHooks = {
  async beforeAction(saga, step) {
    if (step === "notify" && failNotify.has(saga.requestId)) {
      throw new ServiceError(Code.FAILED_PRECONDITION, "injected: the notification could not be sent");
    }
  },
  async afterAction(saga, step, signal) {
    const park = parkAfter.get(saga.requestId);
    if (park?.step !== step) return;
    park.reached();
    // Hold the step between its (done) call and its persisted SUCCEEDED until the process stops.
    await new Promise((_, reject) =>
      signal.addEventListener("abort", () => reject(new Error("stopped")), { once: true }),
    );
  },
};

let s: Stack;
beforeAll(async () => {
  s = await startStack({
    scheduler: { sagaHooks: hooks },
    projectEnv: { DEFAULT_RUNS_PER_DAY: "0", DEFAULT_MAX_CONCURRENT_RUNS: "0" },
  });
});
afterAll(async () => s?.cleanup());

const ownerOf = (projectId: string): Principal => ({
  type: "user",
  id: "alice",
  projectRoles: { [projectId]: "owner" },
});
const stepStates = (saga: SagaExecution | undefined) =>
  saga?.steps.map((st) => [st.name, SagaStepState[st.state]]);
const usage = async (projectId: string) => (await s.projects().getQuota({ projectId })).usage;

type StartInit = MessageInitShape<typeof StartWorkItemCreationRequestSchema>;

function request(projectId: string, over: Partial<StartInit> = {}): StartWorkItemCreationRequest {
  return create(StartWorkItemCreationRequestSchema, {
    requestId: randomUUID(),
    projectId,
    workItem: { title: "saga item", kind: WorkItemKind.BUILD },
    recipeYaml: RECIPE,
    waitTimeout: { seconds: 15n },
    ...over,
  } as StartInit);
}

function variant(req: StartWorkItemCreationRequest, change: (r: StartWorkItemCreationRequest) => void) {
  const copy = clone(StartWorkItemCreationRequestSchema, req);
  change(copy);
  return copy;
}

async function itemGone(projectId: string, workItemId: string) {
  const err = await s
    .items(ownerOf(projectId))
    .getWorkItem({ workItemId })
    .then(
      () => undefined,
      (e: unknown) => ServiceError.from(e),
    );
  expect(err?.code).toBe(Code.NOT_FOUND);
}

describe("WorkItemCreation", () => {
  it("creates, validates the recipe, reserves quota, schedules and notifies, once per request id", async () => {
    const projectId = await s.newProject({});
    const client = s.sched(ownerOf(projectId));
    const req = request(projectId, { schedule: { priority: 3 } });
    const { saga } = await client.startWorkItemCreation(req);
    expect(saga?.state).toBe(SagaState.COMPLETED);
    expect(stepStates(saga)).toEqual([
      ["create_work_item", "SUCCEEDED"],
      ["set_tool_recipe", "SUCCEEDED"],
      ["reserve_quota", "SUCCEEDED"],
      ["schedule_task", "SUCCEEDED"],
      ["notify", "SUCCEEDED"],
    ]);
    const item = (await s.items(ownerOf(projectId)).getWorkItem({ workItemId: saga?.workItemId ?? "" }))
      .workItem;
    expect(item?.recipeVersion).toBe(1);
    const task = (await client.getTask({ taskId: saga?.taskId ?? "" })).task;
    expect(task?.priority).toBe(3);
    await until(
      "task done",
      async () => (await client.getTask({ taskId: task?.id ?? "" })).task?.state,
      (st) => st === TaskState.SUCCEEDED,
    );
    // The first run used the saga's reservation: one run counted, and its slot released.
    const used = await until(
      "slot released",
      () => usage(projectId),
      (u) => u?.concurrentInUse === 0,
    );
    expect(used?.runsUsedInWindow).toBe(1);

    const again = await client.startWorkItemCreation(variant(req, (r) => (r.waitTimeout = undefined)));
    expect(again.saga?.id).toBe(saga?.id);
    const reused = await client
      .startWorkItemCreation(variant(req, (r) => (r.recipeYaml = "")))
      .catch((e: unknown) => ServiceError.from(e));
    expect(reused instanceof ServiceError && [reused.code, reused.reason]).toEqual([
      Code.FAILED_PRECONDITION,
      "IDEMPOTENCY_KEY_REUSED",
    ]);
    expect((await client.getSaga({ sagaId: saga?.id ?? "" })).saga?.state).toBe(SagaState.COMPLETED);
    const listed = await client.listSagas({ projectId });
    expect(listed.sagas.map((x) => x.id)).toEqual([saga?.id]);
    const { jsm } = s.schedulers[0]!.running.host.nats;
    await until(
      "SagaCompleted published",
      async () =>
        (await readStream(jsm, s.subjects.streams.events))
          .map((m) => unpackPayload(decodeEnvelope(m.data), SagaCompletedSchema))
          .filter((e) => e?.sagaId === saga?.id),
      (found) => found.length === 1 && found[0]?.taskId === task?.id,
    );
  });

  it("compensates the created item when the recipe is invalid", async () => {
    const projectId = await s.newProject({});
    const { saga } = await s
      .sched(ownerOf(projectId))
      .startWorkItemCreation(request(projectId, { recipeYaml: "tools: [" }));
    expect(saga?.state).toBe(SagaState.COMPENSATED);
    expect(stepStates(saga)).toEqual([
      ["create_work_item", "COMPENSATED"],
      ["set_tool_recipe", "FAILED"],
      ["reserve_quota", "SKIPPED"],
      ["schedule_task", "SKIPPED"],
      ["notify", "SKIPPED"],
    ]);
    expect(saga?.error?.code).toBe(Code.INVALID_ARGUMENT);
    const details = new ServiceError(Code.INVALID_ARGUMENT, "", saga?.error?.details ?? []);
    expect(details.findDetail(BadRequestSchema)?.fieldViolations.length).toBeGreaterThan(0);
    await itemGone(projectId, saga?.workItemId ?? "");
  });

  it("compensates when the project's quota is exhausted", async () => {
    const projectId = await s.newProject({ maxConcurrentRuns: 1 });
    await s
      .projects()
      .reserveRunSlot({ projectId, reservationKey: "someone-else", workItemId: randomUUID() });
    const { saga } = await s.sched(ownerOf(projectId)).startWorkItemCreation(request(projectId));
    expect(saga?.state).toBe(SagaState.COMPENSATED);
    expect(stepStates(saga)?.slice(0, 3)).toEqual([
      ["create_work_item", "COMPENSATED"],
      ["set_tool_recipe", "COMPENSATED"],
      ["reserve_quota", "FAILED"],
    ]);
    expect(saga?.error?.code).toBe(Code.RESOURCE_EXHAUSTED);
    await itemGone(projectId, saga?.workItemId ?? "");
    expect((await usage(projectId))?.concurrentInUse).toBe(1);
  });

  it("releases the quota and deletes the item when scheduling fails", async () => {
    const projectId = await s.newProject({});
    const schedule = { dependsOn: [randomUUID()] };
    const { saga } = await s
      .sched(ownerOf(projectId))
      .startWorkItemCreation(request(projectId, { schedule }));
    expect(saga?.state).toBe(SagaState.COMPENSATED);
    expect(stepStates(saga)?.slice(2)).toEqual([
      ["reserve_quota", "COMPENSATED"],
      ["schedule_task", "FAILED"],
      ["notify", "SKIPPED"],
    ]);
    expect(saga?.error?.code).toBe(Code.INVALID_ARGUMENT);
    const u = await usage(projectId);
    expect([u?.concurrentInUse, u?.runsUsedInWindow]).toEqual([0, 0]);
    await itemGone(projectId, saga?.workItemId ?? "");
  });

  it("unschedules, releases and deletes, in reverse order, when the last step fails", async () => {
    const projectId = await s.newProject({});
    const req = request(projectId, { schedule: { notBefore: timestampFromMs(Date.now() + 3_600_000) } });
    failNotify.add(req.requestId);
    const { saga } = await s.sched(ownerOf(projectId)).startWorkItemCreation(req);
    expect(saga?.state).toBe(SagaState.COMPENSATED);
    expect(stepStates(saga)).toEqual([
      ["create_work_item", "COMPENSATED"],
      ["set_tool_recipe", "COMPENSATED"],
      ["reserve_quota", "COMPENSATED"],
      ["schedule_task", "COMPENSATED"],
      ["notify", "FAILED"],
    ]);
    const finished = saga?.steps.map(
      (st) => Number(st.finishTime?.seconds ?? 0n) * 1e3 + (st.finishTime?.nanos ?? 0) / 1e6,
    );
    expect(finished?.[3]).toBeLessThanOrEqual(finished?.[2] ?? 0);
    expect(finished?.[2]).toBeLessThanOrEqual(finished?.[0] ?? 0);
    const gone = await s
      .sched(ownerOf(projectId))
      .getTask({ taskId: saga?.taskId ?? "" })
      .catch((e: unknown) => ServiceError.from(e));
    expect(gone instanceof ServiceError && gone.code).toBe(Code.NOT_FOUND);
    expect((await usage(projectId))?.concurrentInUse).toBe(0);
    await itemGone(projectId, saga?.workItemId ?? "");
  });

  it("finishes a saga after the process stops mid-step, without running any step twice in effect", async () => {
    const projectId = await s.newProject({});
    const req = request(projectId, { waitTimeout: { seconds: 0n } });
    const reached = new Promise<void>((resolve) =>
      parkAfter.set(req.requestId, { step: "reserve_quota", reached: resolve }),
    );
    const started = await s.sched(ownerOf(projectId)).startWorkItemCreation(req);
    expect(started.saga?.state).toBe(SagaState.RUNNING);
    await reached;
    // The reservation was made, but the process stops before recording it.
    expect((await usage(projectId))?.runsUsedInWindow).toBe(1);
    await s.schedulers[0]?.running.stop("simulated crash");
    const replacement = await s.addScheduler({});
    const client = s.sched(ownerOf(projectId), s.schedulers.indexOf(replacement));
    const saga = await until(
      "saga resumed and completed",
      async () => (await client.getSaga({ sagaId: started.saga?.id ?? "" })).saga,
      (x) => x?.state === SagaState.COMPLETED,
      15_000,
    );
    expect(saga?.steps.map((st) => [st.name, st.attempt])).toEqual([
      ["create_work_item", 1],
      ["set_tool_recipe", 1],
      ["reserve_quota", 2],
      ["schedule_task", 1],
      ["notify", 1],
    ]);
    expect((await usage(projectId))?.runsUsedInWindow).toBe(1);
    const items = await s.items(ownerOf(projectId)).listWorkItems({ projectId });
    expect(items.workItems.map((w) => w.id)).toEqual([saga?.workItemId]);
    const tasks = await client.listTasks({ projectId });
    expect(tasks.tasks.map((t) => t.id)).toEqual([saga?.taskId]);
  });
});
