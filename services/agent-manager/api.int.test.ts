import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentState } from "../../gen/codex/agentmanager/v1/agent_pb.js";
import { AgentManagerService } from "../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { RunState } from "../../gen/codex/agentmanager/v1/run_pb.js";
import { AgentDeregisteredSchema, AgentLostSchema } from "../../gen/codex/events/v1/agent_events_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { createClient } from "../../mesh/grpc/client.js";
import { eventually } from "../../mesh/nats/testing.js";
import {
  ADMIN,
  type AmHarness,
  Code,
  failure,
  people,
  SERVICE,
  snapshot,
  startAgentManager,
} from "./testing/harness.js";
import { TestAgent } from "./testing/test-agent.js";

let h: AmHarness;
let seq = 0;
const PROJECT = "p-api";
const who = people(PROJECT);
const REGISTRATION_KEY = `reg-${randomBytes(8).toString("hex")}`;

beforeAll(async () => {
  h = await startAgentManager({ AGENT_MANAGER_REGISTRATION_KEYS: REGISTRATION_KEY });
});
afterAll(async () => h?.stop());

async function enqueue(selector: Record<string, string>, projectId = PROJECT) {
  seq += 1;
  const { run } = await h.client(SERVICE).enqueueRun({
    taskId: `api-task-${seq}`,
    attempt: 1,
    workItemId: `wi-${seq}`,
    projectId,
    agentSelector: selector,
    workItem: snapshot(projectId),
  });
  if (!run) throw new Error("no run");
  return run;
}

describe("EnqueueRun", () => {
  it("is internal, validated, and idempotent by (task_id, attempt)", async () => {
    await failure(
      h
        .client(who.maintainer)
        .enqueueRun({ taskId: "t", attempt: 1, workItemId: "w", projectId: PROJECT, workItem: {} }),
      Code.PERMISSION_DENIED,
    );
    const bad = await failure(
      h.client(SERVICE).enqueueRun({ taskId: "", attempt: 0 }),
      Code.INVALID_ARGUMENT,
    );
    expect(bad.findDetail(BadRequestSchema)?.fieldViolations.map((v) => v.field)).toEqual([
      "task_id",
      "work_item_id",
      "project_id",
      "attempt",
      "work_item",
    ]);
    const req = {
      taskId: "same-task",
      attempt: 2,
      workItemId: "w",
      projectId: PROJECT,
      workItem: snapshot(PROJECT),
      agentSelector: { pool: "none" },
    };
    const [a, b] = await Promise.all([h.client(SERVICE).enqueueRun(req), h.client(SERVICE).enqueueRun(req)]);
    expect(a.run?.id).toBe(b.run?.id);
    expect(a.run).toMatchObject({ state: RunState.PENDING, attempt: 2, fencingToken: 0n });
    expect(a.run?.traceId).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe("unary agent calls", () => {
  it("ClaimRun waits for a run; RenewLease starts it; AppendLogs and CompleteRun finish it", async () => {
    const p = `pool-${randomBytes(3).toString("hex")}`;
    const a = await TestAgent.register(h, { labels: { pool: p }, capacity: 2 });
    const claiming = a.client.claimRun({ agentId: a.id, maxRuns: 1, wait: { seconds: 3n } });
    await new Promise((r) => setTimeout(r, 200));
    const run = await enqueue({ pool: p });
    const claimed = await claiming;
    expect(claimed.assignments.map((x) => x.run?.id)).toEqual([run.id]);
    const token = claimed.assignments[0]?.fencingToken ?? 0n;
    expect((await h.client(SERVICE).getAgent({ agentId: a.id })).agent?.state).toBe(AgentState.ONLINE);
    const renewed = await a.client.renewLease({ runId: run.id, fencingToken: token, currentStep: 0 });
    expect(renewed.lease).toMatchObject({ valid: true, runId: run.id, fencingToken: token });
    expect((await h.client(SERVICE).getRun({ runId: run.id })).run?.state).toBe(RunState.RUNNING);
    // A credential the gateway forwards with the signed principal is not mistaken for a session.
    await a.client.renewLease(
      { runId: run.id, fencingToken: token },
      { headers: { authorization: "Bearer eyJhbGciOi.jwt.sig" } },
    );
    const appended = await a.client.appendLogs({
      runId: run.id,
      fencingToken: token,
      chunks: [{ seq: 1n, stream: 1, data: new TextEncoder().encode("hi\n") }],
    });
    expect(appended.persistedSeq).toBe(1n);
    const stale = await failure(
      a.client.renewLease({ runId: run.id, fencingToken: token + 1n }),
      Code.FAILED_PRECONDITION,
    );
    expect(stale.reason).toBe("STALE_LEASE");
    const done = await a.client.completeRun({
      runId: run.id,
      fencingToken: token,
      status: RunState.SUCCEEDED,
      exitCode: 0,
    });
    expect(done.run?.state).toBe(RunState.SUCCEEDED);
    const none = await a.client.claimRun({ agentId: a.id, maxRuns: 1 });
    expect(none.assignments).toHaveLength(0);
    await failure(
      a.client.claimRun({ agentId: "00000000-0000-0000-0000-000000000000" }),
      Code.PERMISSION_DENIED,
    );
    await h.client(ADMIN).drainAgent({ agentId: a.id });
    const refused = await failure(a.client.claimRun({ agentId: a.id }), Code.FAILED_PRECONDITION);
    expect(refused.reason).toBe("AGENT_NOT_ONLINE");
  });

  it("a long poll keeps the agent ONLINE past the offline window", async () => {
    const a = await TestAgent.register(h, { labels: { pool: `pool-${randomBytes(3).toString("hex")}` } });
    const none = await a.client.claimRun({ agentId: a.id, wait: { nanos: 900_000_000 } });
    expect(none.assignments).toHaveLength(0);
    expect((await h.client(SERVICE).getAgent({ agentId: a.id })).agent?.state).toBe(AgentState.ONLINE);
    expect((await h.payloads(AgentLostSchema)).some((e) => e.agentId === a.id)).toBe(false);
  });

  it("refuses agent calls from people and calls of one agent about another's run", async () => {
    const p = `pool-${randomBytes(3).toString("hex")}`;
    const a = await TestAgent.register(h, { labels: { pool: p } });
    const b = await TestAgent.register(h, { labels: { pool: `${p}-b` } });
    const run = await enqueue({ pool: p });
    const claimed = await a.client.claimRun({ agentId: a.id, wait: { seconds: 2n } });
    const token = claimed.assignments[0]?.fencingToken ?? 0n;
    const other = await failure(
      b.client.completeRun({ runId: run.id, fencingToken: token, status: RunState.SUCCEEDED }),
      Code.PERMISSION_DENIED,
    );
    expect(other.reason).toBe("NOT_LEASE_HOLDER");
    await failure(
      h
        .client(who.maintainer)
        .completeRun({ runId: run.id, fencingToken: token, status: RunState.SUCCEEDED }),
      Code.PERMISSION_DENIED,
    );
    await failure(
      a.client.completeRun({ runId: run.id, fencingToken: token, status: RunState.LOST }),
      Code.INVALID_ARGUMENT,
    );
    await a.client.completeRun({ runId: run.id, fencingToken: token, status: RunState.SUCCEEDED });
  });
});

describe("agents behind the gateway", () => {
  it("holds the stream with an agent API key or an agent JWT plus its session token; people are refused", async () => {
    // What the gateway forwards: an AGENT-role API key, or an agent JWT whose subject is not the agent id.
    const viaKey = await TestAgent.register(h);
    viaKey.client = h.client({ type: "api_key", id: "key-agents", projectRoles: { [PROJECT]: "agent" } });
    expect((await viaKey.connect()).message.case).toBe("welcome");
    await viaKey.close();

    const viaJwt = await TestAgent.register(h);
    viaJwt.client = h.client({ type: "agent", id: "builder-eu-1" });
    expect((await viaJwt.connect()).message.case).toBe("welcome");
    await viaJwt.close();

    // Without the session token an API key says nothing about which agent it is.
    const noToken = await TestAgent.register(h);
    noToken.client = h.client({ type: "api_key", id: "key-agents", projectRoles: { [PROJECT]: "agent" } });
    await expect(noToken.connect({ token: "" })).rejects.toThrow();
    expect(noToken.error?.code).toBe(Code.UNAUTHENTICATED);

    // A maintainer's key, or a person, is not an agent even with a valid session token.
    const person = await TestAgent.register(h);
    person.client = h.client({
      type: "api_key",
      id: "key-people",
      projectRoles: { [PROJECT]: "maintainer" },
    });
    await expect(person.connect()).rejects.toThrow();
    expect(person.error?.code).toBe(Code.PERMISSION_DENIED);
  });
});

describe("reads and fleet administration", () => {
  it("scopes runs to the projects a caller can read, newest first, in pages", async () => {
    const p = `pool-${randomBytes(3).toString("hex")}`;
    const mine = [await enqueue({ pool: p }), await enqueue({ pool: p }), await enqueue({ pool: p })];
    const foreign = await enqueue({ pool: p }, "p-foreign");
    await failure(h.client(who.viewer).getRun({ runId: foreign.id }), Code.NOT_FOUND);
    await failure(h.client({ type: "agent", id: "x" }).getRun({ runId: mine[0]?.id ?? "" }), Code.NOT_FOUND);
    const first = await h.client(who.viewer).listRuns({ pageSize: 2, states: [RunState.PENDING] });
    const second = await h
      .client(who.viewer)
      .listRuns({ pageSize: 2, states: [RunState.PENDING], pageToken: first.nextPageToken });
    const ids = [...first.runs, ...second.runs].map((r) => r.id);
    expect(ids.slice(0, 3)).toEqual(mine.map((r) => r.id).reverse());
    expect(ids).not.toContain(foreign.id);
    await failure(h.client(who.viewer).listRuns({ pageToken: first.nextPageToken }), Code.INVALID_ARGUMENT);
    const admin = await h.client(ADMIN).listRuns({ projectId: "p-foreign" });
    expect(admin.runs.map((r) => r.id)).toContain(foreign.id);
  });

  it("registers with a registration key, lists agents by label, and deregisters with force", async () => {
    const anonymous = createClient(AgentManagerService, {
      address: h.t.running.address,
      retry: false,
      breaker: false,
    });
    try {
      const md = { authorization: `Bearer ${REGISTRATION_KEY}` };
      const name = `keyed-${randomBytes(3).toString("hex")}`;
      const reg = await anonymous.registerAgent(
        { agent: { name, capacity: 1, labels: { team: "infra" } } },
        { headers: md },
      );
      expect(reg.sessionToken).toMatch(/^am1\./);
      expect(Number(reg.heartbeatInterval?.nanos)).toBe(100_000_000);
      await failure(
        anonymous.registerAgent(
          { agent: { name, capacity: 1 } },
          { headers: { authorization: "Bearer nope" } },
        ),
        Code.UNAUTHENTICATED,
      );
      await failure(
        h.client(who.maintainer).registerAgent({ agent: { name: "x", capacity: 1 } }),
        Code.PERMISSION_DENIED,
      );
      const invalid = await failure(
        anonymous.registerAgent({ agent: { name: "Bad Name", capacity: 0 } }, { headers: md }),
        Code.INVALID_ARGUMENT,
      );
      expect(invalid.findDetail(BadRequestSchema)?.fieldViolations.map((v) => v.field)).toEqual([
        "agent.name",
        "agent.capacity",
      ]);
      // A session token alone authenticates agent calls (no gateway principal).
      const tokenOnly = await anonymous.claimRun(
        { agentId: reg.agent?.id ?? "" },
        { headers: { authorization: `Bearer ${reg.sessionToken}` } },
      );
      expect(tokenOnly.assignments).toHaveLength(0);
      const listed = await h.client(who.viewer).listAgents({ labelSelector: ["team=infra"] });
      expect(listed.agents.map((x) => x.name)).toEqual([name]);
    } finally {
      anonymous.close();
    }
    const p = `pool-${randomBytes(3).toString("hex")}`;
    const a = await TestAgent.register(h, { labels: { pool: p } });
    await a.connect();
    const run = await enqueue({ pool: p });
    await eventually("assigned", () => a.assignments().length === 1);
    const busy = await failure(h.client(ADMIN).deregisterAgent({ agentId: a.id }), Code.FAILED_PRECONDITION);
    expect(busy.reason).toBe("WRONG_STATE");
    a.stopHeartbeats();
    await h.client(ADMIN).deregisterAgent({ agentId: a.id, force: true });
    await a.ended();
    expect(a.error?.code).toBe(Code.UNAUTHENTICATED);
    await failure(h.client(ADMIN).getAgent({ agentId: a.id }), Code.NOT_FOUND);
    const after = (await h.client(SERVICE).getRun({ runId: run.id })).run;
    expect(after).toMatchObject({ state: RunState.PENDING, leaseExpiries: 0 });
    await eventually("AgentDeregistered", async () =>
      (await h.payloads(AgentDeregisteredSchema)).some((e) => e.agentId === a.id),
    );
    expect(
      (await h.payloads(AgentDeregisteredSchema)).find((e) => e.agentId === a.id)?.releasedRunIds,
    ).toEqual([run.id]);
  });
});
