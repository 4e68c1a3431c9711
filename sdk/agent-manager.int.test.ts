/**
 * The SDK against the real Agent Manager (services/agent-manager, in-process over real gRPC,
 * Postgres, Redis and NATS): runs with logs and exit codes, cancellation, info requests,
 * reconnect with resume across a manager restart, and hand-back at shutdown to another agent.
 */
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentManagerService } from "../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { InfoRequestState } from "../gen/codex/agentmanager/v1/info_request_pb.js";
import { RunState } from "../gen/codex/agentmanager/v1/run_pb.js";
import { WorkItemKind } from "../gen/codex/workitem/v1/work_item_pb.js";
import { WorkItemService } from "../gen/codex/workitem/v1/workitem_service_pb.js";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import type { Principal } from "../mesh/context.js";
import { Code, ServiceError } from "../mesh/errors.js";
import { createLogger } from "../mesh/logging.js";
import { createRedis } from "../mesh/redis.js";
import { agentManagerService } from "../services/agent-manager/service.js";
import { workitemService } from "../services/workitem/service.js";
import {
  REDIS_URL,
  startTestService,
  TEST_MESH_SECRET,
  type TestService,
  uniqueName,
} from "../test/support/harness.js";
import type { AssignmentHandler } from "./types.js";
import { AgentWorker } from "./worker.js";

const SCHEDULER: Principal = { type: "service", id: "scheduler" };
const ADMIN: Principal = { type: "user", id: "root", projectRoles: { "*": "admin" } };
const logger = createLogger({ service: "sdk-int", level: (process.env.SDK_TEST_LOG as "debug") ?? "silent" });

const schema = uniqueName("sdk_am");
const prefix = uniqueName("sdkam");
const redisPrefix = `t-sdk-${randomBytes(4).toString("hex")}:`;
const env = {
  AGENT_MANAGER_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
  AGENT_MANAGER_REDIS_PREFIX: redisPrefix,
  AGENT_MANAGER_HEARTBEAT_INTERVAL: "100ms",
  // Long enough for the restart test: a lease that outlives the manager's downtime is resumed.
  AGENT_MANAGER_LEASE_TTL: "15s",
  AGENT_MANAGER_SWEEP_INTERVAL: "25ms",
};
let am: TestService<typeof agentManagerService.config & object>;
let workitems: TestService<typeof workitemService.config & object>;
let port = 0;
const workers: AgentWorker[] = [];

async function startManager(): Promise<void> {
  am = await startTestService(agentManagerService, { schema, prefix, env: { ...env, PORT: String(port) } });
  port = am.running.port;
}

beforeAll(async () => {
  await startManager();
  // The workitem service asks the agent manager whether an uploading agent holds its run.
  workitems = await startTestService(workitemService, {
    prefix,
    env: { AGENT_MANAGER_ADDR: `127.0.0.1:${port}` },
  });
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop("test over")));
  await am.cleanup();
  await workitems.cleanup();
  const redis = createRedis(REDIS_URL);
  const keys = await redis.keys(`${redisPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

async function agent(handler: AssignmentHandler, graceMs = 5_000): Promise<AgentWorker> {
  const w = new AgentWorker({
    connection: {
      address: `127.0.0.1:${port}`,
      artifactAddress: workitems.running.address,
      meshSecret: TEST_MESH_SECRET,
    },
    agent: { name: `sdk-${randomBytes(4).toString("hex")}`, capacity: 2, labels: { suite: prefix } },
    handler,
    logger,
    reconnect: { maxAttempts: 40, baseMs: 20, capMs: 200 },
    shutdown: { graceMs, forceMs: 20_000 },
    logs: { flushMs: 20 },
  });
  workers.push(w);
  await w.start();
  return w;
}

const manager = (p: Principal) => am.client(AgentManagerService, p);

async function enqueue(title: string, workItemId = `wi-${randomBytes(4).toString("hex")}`): Promise<string> {
  const res = await manager(SCHEDULER).enqueueRun({
    taskId: `task-${randomBytes(4).toString("hex")}`,
    workItemId,
    projectId: "p-sdk",
    attempt: 1,
    agentSelector: { suite: prefix },
    workItem: { title, projectId: "p-sdk", workItemId },
  });
  return res.run?.id ?? "";
}

async function finished(runId: string, timeout = 10_000) {
  let run: Awaited<ReturnType<ReturnType<typeof manager>["getRun"]>>["run"];
  await expect
    .poll(
      async () => {
        run = (await manager(ADMIN).getRun({ runId })).run;
        return run?.finishTime !== undefined;
      },
      { timeout, interval: 50 },
    )
    .toBe(true);
  return run!;
}

describe("AgentWorker against the Agent Manager", () => {
  it("executes a run: logs stored, exit code and outcome recorded", async () => {
    const w = await agent(async (run, ctx) => {
      ctx.log("stdout", `hello from ${run.workItem.title}`);
      ctx.setStep(1);
      ctx.log("stderr", "a warning");
      return { exitCode: 0 };
    });
    const runId = await enqueue("sdk build");
    const run = await finished(runId);
    expect(run.state).toBe(RunState.SUCCEEDED);
    expect(run.exitCode).toBe(0);
    expect(run.agentId).toBe(w.agentId);
    const logs = await manager(ADMIN).listRunLogs({ runId });
    expect(logs.entries.map((e) => [e.text, e.stepIndex])).toEqual([
      ["hello from sdk build", 0],
      ["a warning", 1],
    ]);
    await w.stop();
  });

  it("cancels: the handler's signal aborts and the run ends CANCELLED", async () => {
    const w = await agent(async (_run, ctx) => {
      await new Promise((r) => ctx.signal.addEventListener("abort", r));
      return { exitCode: 143 };
    });
    const runId = await enqueue("sdk cancel");
    await expect
      .poll(async () => (await manager(ADMIN).getRun({ runId })).run?.state, { timeout: 5_000 })
      .toBe(RunState.RUNNING);
    await manager(ADMIN).cancelRun({ runId, reason: "not needed" });
    const run = await finished(runId);
    expect(run.state).toBe(RunState.CANCELLED);
    expect(run.exitCode).toBe(143);
    await w.stop();
  });

  it("asks a person for input and continues with the answer", async () => {
    let got = "";
    const w = await agent(async (_run, ctx) => {
      const v = await ctx.requestInfo([{ name: "REGION", description: "where to deploy" }], {
        reason: "need a region",
      });
      got = v.REGION ?? "";
    });
    const runId = await enqueue("sdk info");
    let requestId = "";
    await expect
      .poll(
        async () => {
          const list = await manager(ADMIN).listInfoRequests({ runId, states: [InfoRequestState.PENDING] });
          requestId = list.infoRequests[0]?.id ?? "";
          return requestId;
        },
        { timeout: 5_000 },
      )
      .not.toBe("");
    await manager(ADMIN).answerInfoRequest({ infoRequestId: requestId, values: { REGION: "eu-west-1" } });
    expect((await finished(runId)).state).toBe(RunState.SUCCEEDED);
    expect(got).toBe("eu-west-1");
    await w.stop();
  });

  it("uploads an artifact of the run to the work item service, content-addressed", async () => {
    const item = await workitems.client(WorkItemService, SCHEDULER).createWorkItem({
      projectId: "p-sdk",
      workItem: { title: "package", kind: WorkItemKind.BUILD },
    });
    const workItemId = item.workItem?.id ?? "";
    let uploaded: { name: string; sha256: string; sizeBytes: bigint } | undefined;
    const w = await agent(async (_run, ctx) => {
      async function* content() {
        for (let i = 0; i < 3; i++) yield Buffer.alloc(700_000, 65 + i);
      }
      uploaded = await ctx.uploadArtifact("bundle.bin", "application/octet-stream", content());
    });
    const runId = await enqueue("sdk artifact", workItemId);
    expect((await finished(runId)).state).toBe(RunState.SUCCEEDED);
    expect(uploaded).toMatchObject({ name: "bundle.bin", sizeBytes: 2_100_000n });
    const list = await workitems.client(WorkItemService, SCHEDULER).listArtifacts({ runId });
    expect(list.artifacts.map((a) => [a.name, a.sha256, a.createdBy])).toEqual([
      ["bundle.bin", uploaded?.sha256, w.agentId],
    ]);
    await w.stop();
  });

  it("the work item service refuses an upload for the run with a stale fencing token (STALE_LEASE)", async () => {
    const item = await workitems.client(WorkItemService, SCHEDULER).createWorkItem({
      projectId: "p-sdk",
      workItem: { title: "stale upload", kind: WorkItemKind.BUILD },
    });
    const workItemId = item.workItem?.id ?? "";
    let held!: { runId: string; fencingToken: bigint };
    let release!: () => void;
    const w = await agent(async (run) => {
      held = run;
      await new Promise<void>((r) => {
        release = r;
      });
    });
    const runId = await enqueue("sdk stale upload", workItemId);
    await expect.poll(() => held?.runId, { timeout: 10_000 }).toBe(runId);
    // The real agent manager answers the check: the run is RUNNING under this agent, token 1.
    const asAgent = workitems.client(WorkItemService, {
      type: "agent",
      id: w.agentId,
      projectRoles: { "p-sdk": "agent" },
    } as Principal);
    const data = new TextEncoder().encode("late result");
    async function* upload(fencingToken: bigint) {
      yield {
        payload: {
          case: "header" as const,
          value: {
            workItemId,
            runId,
            fencingToken,
            name: `t${fencingToken}.txt`,
            expectedSha256: createHash("sha256").update(data).digest("hex"),
            expectedSize: BigInt(data.length),
          },
        },
      };
      yield { payload: { case: "chunk" as const, value: data } };
    }
    const stale = await asAgent.uploadArtifact(upload(held.fencingToken + 1n)).then(
      () => undefined,
      (err: unknown) => ServiceError.from(err),
    );
    expect(stale?.code).toBe(Code.FAILED_PRECONDITION);
    expect(stale?.findDetail(ErrorInfoSchema)?.reason).toBe("STALE_LEASE");
    const current = await asAgent.uploadArtifact(upload(held.fencingToken));
    expect(current.artifact?.runId).toBe(runId);
    release();
    expect((await finished(runId)).state).toBe(RunState.SUCCEEDED);
    await w.stop();
  });

  it("survives a manager restart: reconnects, resumes the run and completes it", async () => {
    let release!: () => void;
    const w = await agent(async (_run, ctx) => {
      ctx.log("stdout", "before the restart");
      await new Promise<void>((r) => {
        release = r;
      });
      ctx.log("stdout", "after the restart");
    });
    const states: string[] = [];
    w.onStateChange((s) => states.push(s));
    const runId = await enqueue("sdk resume");
    await expect
      .poll(async () => (await manager(ADMIN).getRun({ runId })).run?.state, { timeout: 5_000 })
      .toBe(RunState.RUNNING);
    await am.running.stop("restart");
    await startManager();
    await expect.poll(() => w.state, { timeout: 10_000 }).toBe("RUNNING");
    release();
    const run = await finished(runId);
    expect(run.state).toBe(RunState.SUCCEEDED);
    expect(run.agentId).toBe(w.agentId);
    expect(states).toContain("CONNECTING");
    const texts = (await manager(ADMIN).listRunLogs({ runId })).entries.map((e) => e.text);
    expect(texts).toEqual(["before the restart", "after the restart"]);
    await w.stop();
  });

  it("hands an unfinished run back at shutdown, and another agent finishes it", async () => {
    const first = await agent(async (_run, ctx) => {
      await new Promise((r) => ctx.signal.addEventListener("abort", r));
    }, 200);
    const runId = await enqueue("sdk hand back");
    await expect
      .poll(async () => (await manager(ADMIN).getRun({ runId })).run?.state, { timeout: 5_000 })
      .toBe(RunState.RUNNING);
    await first.stop("SIGTERM");
    expect(first.state).toBe("STOPPED");
    const second = await agent(async () => ({ exitCode: 0 }));
    const run = await finished(runId);
    expect(run.state).toBe(RunState.SUCCEEDED);
    expect(run.agentId).toBe(second.agentId);
    await second.stop();
  });
});
