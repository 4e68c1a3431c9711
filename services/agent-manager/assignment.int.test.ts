import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentState } from "../../gen/codex/agentmanager/v1/agent_pb.js";
import { RunState } from "../../gen/codex/agentmanager/v1/run_pb.js";
import { AgentLostSchema, AgentStateChangedSchema } from "../../gen/codex/events/v1/agent_events_pb.js";
import { eventually } from "../../mesh/nats/testing.js";
import { ADMIN, type AmHarness, Code, SERVICE, snapshot, startAgentManager } from "./testing/harness.js";
import { TestAgent } from "./testing/test-agent.js";

let h: AmHarness;
let seq = 0;

// Nothing here waits for a lease to expire, and only one test for an agent to go OFFLINE: a
// long lease and a 2 s silence before OFFLINE keep a busy CI machine's scheduling stalls (the
// agents and the manager share this process) from expiring leases the tests count on.
beforeAll(async () => {
  h = await startAgentManager({
    AGENT_MANAGER_LEASE_TTL: "30s",
    AGENT_MANAGER_OFFLINE_AFTER_INTERVALS: "20",
  });
});
afterAll(async () => h?.stop());

const pool = () => `pool-${randomBytes(3).toString("hex")}`;

async function enqueue(selector: Record<string, string>, tools: { name: string; version?: string }[] = []) {
  seq += 1;
  const { run } = await h.client(SERVICE).enqueueRun({
    taskId: `task-${seq}`,
    attempt: 1,
    workItemId: `wi-${seq}`,
    projectId: "p1",
    agentSelector: selector,
    workItem: snapshot("p1", tools),
  });
  if (!run) throw new Error("no run");
  return run;
}

async function runState(runId: string) {
  return (await h.client(SERVICE).getRun({ runId })).run;
}

/** Leased runs per agent, straight from Postgres. */
async function leasedCount(agentId: string): Promise<number> {
  const rows = await h.sql<{ n: number }>(
    "SELECT count(*)::int AS n FROM runs WHERE agent_id = $1 AND state IN (2, 3)",
    [agentId],
  );
  return rows[0]?.n ?? 0;
}

/** Claims this manager settled so far, by outcome. */
async function claims(): Promise<{ taken: number; missed: number }> {
  const metric = await h.t.running.host.metrics.registry.getSingleMetric("agent_manager_claims_total")?.get();
  const of = (outcome: string) => metric?.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
  return { taken: of("taken"), missed: of("missed") };
}

describe("registration and assignment", () => {
  it("registers an agent OFFLINE, connects it ONLINE and pushes a matching run on its stream", async () => {
    const p = pool();
    const a = await TestAgent.register(h, { labels: { pool: p }, capacity: 2, version: "1.2.3" });
    const before = await h.client(SERVICE).getAgent({ agentId: a.id });
    expect(before.agent?.state).toBe(AgentState.OFFLINE);
    await a.connect();
    const run = await enqueue({ pool: p });
    expect(run.state).toBe(RunState.PENDING);
    const msg = await a.waitFor((m) => m.message.case === "assignment");
    const assignment = msg.message.case === "assignment" ? msg.message.value : undefined;
    expect(assignment?.run?.id).toBe(run.id);
    expect(assignment?.fencingToken).toBe(1n);
    expect(assignment?.run?.state).toBe(RunState.ASSIGNED);
    expect(assignment?.workItem?.title).toBe("build it");
    const after = await h.client(SERVICE).getAgent({ agentId: a.id });
    expect(after.agent).toMatchObject({
      state: AgentState.ONLINE,
      runningRuns: 1,
      runningRunIds: [run.id],
      version: "1.2.3",
    });
    expect(after.agent?.lastHeartbeatTime).toBeDefined();
    await a.close();
  });

  it("offers a run only to agents matching its selector and offering its tools", async () => {
    const p = pool();
    const plain = await TestAgent.register(h, { labels: { pool: p }, capacity: 5 });
    const gpu = await TestAgent.register(h, {
      labels: { pool: p, gpu: "true" },
      os: "linux",
      capacity: 5,
      capabilities: [{ name: "terraform", versions: ["1.5.0"] }],
    });
    await plain.connect();
    await gpu.connect();
    const needsGpu = await enqueue({ pool: p, gpu: "true" });
    const needsTf = await enqueue({ pool: p }, [{ name: "terraform", version: "1.5.0" }]);
    const needsLinux = await enqueue({ pool: p, os: "linux" });
    const wrongVersion = await enqueue({ pool: p }, [{ name: "terraform", version: "0.12.0" }]);
    await eventually("three assignments", () => gpu.assignments().length === 3);
    expect(new Set(gpu.assignments().map((x) => x.run?.id))).toEqual(
      new Set([needsGpu.id, needsTf.id, needsLinux.id]),
    );
    expect(plain.assignments()).toHaveLength(0);
    expect((await runState(wrongVersion.id))?.state).toBe(RunState.PENDING);
    await plain.close();
    await gpu.close();
  });

  it("assigns to the least loaded agent first", async () => {
    const p = pool();
    const busy = await TestAgent.register(h, { labels: { pool: p, role: "busy" }, capacity: 4 });
    const idle = await TestAgent.register(h, { labels: { pool: p }, capacity: 4 });
    await busy.connect();
    await enqueue({ pool: p, role: "busy" });
    await enqueue({ pool: p, role: "busy" });
    await eventually("busy holds two runs", () => busy.assignments().length === 2);
    await idle.connect();
    for (let i = 0; i < 3; i++) await enqueue({ pool: p });
    await eventually(
      "three more runs assigned",
      () => busy.assignments().length + idle.assignments().length === 5,
    );
    // busy 2/4 vs idle 0/4: idle takes runs until it is as loaded (2/4); the fifth goes to the
    // one that waited longest since its last assignment, i.e. busy.
    expect(idle.assignments()).toHaveLength(2);
    expect(busy.assignments()).toHaveLength(3);
    await busy.close();
    await idle.close();
  });

  it("an enqueue its agent takes at once costs one claim, not a second one that finds nothing", async () => {
    const p = pool();
    const a = await TestAgent.register(h, { labels: { pool: p }, capacity: 5 });
    await a.connect();
    const before = await claims();
    for (let i = 0; i < 5; i++) {
      await enqueue({ pool: p });
      await eventually("assigned", () => a.assignments().length === i + 1);
    }
    // A needless second claim would follow each assignment within a commit or two.
    await new Promise((r) => setTimeout(r, 100));
    const after = await claims();
    expect(after.taken - before.taken).toBe(5);
    expect(after.missed - before.missed).toBe(0);
    await a.close();
  });

  it("never assigns above capacity, and assigns the next run when a slot frees", async () => {
    const p = pool();
    const a = await TestAgent.register(h, { labels: { pool: p }, capacity: 2 });
    await a.connect();
    const runs = [];
    for (let i = 0; i < 5; i++) runs.push(await enqueue({ pool: p }));
    await eventually("two assignments", () => a.assignments().length === 2);
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) {
      samples.push(await leasedCount(a.id));
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(Math.max(...samples)).toBe(2);
    expect(a.assignments()).toHaveLength(2);
    const first = a.assignments()[0]?.run?.id ?? "";
    a.complete(first);
    await eventually("a third assignment", () => a.assignments().length === 3);
    expect(await leasedCount(a.id)).toBe(2);
    // Runs are assigned in claim order (same priority: oldest first).
    expect(a.assignments().map((x) => x.run?.id)).toEqual(runs.slice(0, 3).map((r) => r.id));
    await a.close();
  });

  it("drain stops new assignments, lets in-flight runs complete, undrain resumes", async () => {
    const p = pool();
    const a = await TestAgent.register(h, { labels: { pool: p }, capacity: 3 });
    await a.connect();
    const inflight = await enqueue({ pool: p });
    await eventually("assigned", () => a.assignments().length === 1);
    a.start(inflight.id);
    const { agent } = await h.client(ADMIN).drainAgent({ agentId: a.id, reason: "kernel upgrade" });
    expect(agent?.state).toBe(AgentState.DRAINING);
    const notice = await a.waitFor((m) => m.message.case === "drain");
    expect(notice.message.case === "drain" && notice.message.value.reason).toBe("kernel upgrade");
    const waiting = await enqueue({ pool: p });
    await new Promise((r) => setTimeout(r, 300));
    expect(a.assignments()).toHaveLength(1);
    expect((await runState(waiting.id))?.state).toBe(RunState.PENDING);
    const done = a.complete(inflight.id);
    await a.acked(done);
    expect((await runState(inflight.id))?.state).toBe(RunState.SUCCEEDED);
    await new Promise((r) => setTimeout(r, 100));
    expect(a.assignments()).toHaveLength(1);
    // Draining again is a no-op; drain needs an admin.
    await h.client(ADMIN).drainAgent({ agentId: a.id, reason: "again" });
    const err = await h
      .client({ type: "user", id: "bob", projectRoles: { p1: "maintainer" } })
      .drainAgent({ agentId: a.id })
      .catch((e) => e);
    expect(err.code).toBe(Code.PERMISSION_DENIED);
    const undrained = await h.client(ADMIN).undrainAgent({ agentId: a.id });
    expect(undrained.agent?.state).toBe(AgentState.ONLINE);
    await eventually("the waiting run is assigned after undrain", () => a.assignments().length === 2);
    expect(a.assignments()[1]?.run?.id).toBe(waiting.id);
    await a.close();
  });

  it("detects an agent that stops heartbeating as OFFLINE and closes its stream", async () => {
    const p = pool();
    const a = await TestAgent.register(h, { labels: { pool: p }, capacity: 1 });
    await a.connect();
    const run = await enqueue({ pool: p });
    await eventually("assigned", () => a.assignments().length === 1);
    a.stopHeartbeats();
    await eventually(
      "agent OFFLINE",
      async () => (await h.client(SERVICE).getAgent({ agentId: a.id })).agent?.state === AgentState.OFFLINE,
      10_000,
    );
    await a.ended();
    expect(a.error?.code).toBe(Code.UNAVAILABLE);
    // The events leave through the outbox, after the state change commits.
    const lostEvent = async () => (await h.payloads(AgentLostSchema)).find((e) => e.agentId === a.id);
    await eventually("AgentLost published", async () => (await lostEvent()) !== undefined);
    expect((await lostEvent())?.runIds).toEqual([run.id]);
    const changes = async () =>
      (await h.payloads(AgentStateChangedSchema)).filter((e) => e.agentId === a.id).map((c) => c.newState);
    await eventually("AgentStateChanged(OFFLINE) published", async () => (await changes()).length >= 2);
    expect(await changes()).toEqual([AgentState.ONLINE, AgentState.OFFLINE]);
    const { agent } = await h.client(SERVICE).getAgent({ agentId: a.id });
    expect(agent?.stateReason).toMatch(/no heartbeat/);
  });

  it("a rejected run goes back to PENDING and to another agent, never to the rejecting one", async () => {
    const p = pool();
    const picky = await TestAgent.register(h, { labels: { pool: p }, capacity: 1 });
    await picky.connect();
    const run = await enqueue({ pool: p });
    await eventually("assigned to picky", () => picky.assignments().length === 1);
    picky.send({
      case: "reject",
      value: { runId: run.id, fencingToken: picky.tokenOf(run.id), reason: "no docker here" },
    });
    await eventually("PENDING again", async () => (await runState(run.id))?.state === RunState.PENDING);
    await new Promise((r) => setTimeout(r, 150));
    expect(picky.assignments()).toHaveLength(1);
    const other = await TestAgent.register(h, { labels: { pool: p }, capacity: 1 });
    await other.connect();
    await eventually("assigned to the other agent", () => other.assignments().length === 1);
    expect(other.assignments()[0]?.fencingToken).toBe(2n);
    await picky.close();
    await other.close();
  });
});

describe("Connect stream rules", () => {
  it("refuses a first message that is not a hello", async () => {
    const a = await TestAgent.register(h, { labels: { pool: pool() } });
    const stream = a.client.connect(
      (async function* () {
        yield { messageSeq: 1n, message: { case: "heartbeat" as const, value: { seq: 1n } } };
        await new Promise((r) => setTimeout(r, 500));
      })(),
    );
    const err = await (async () => {
      for await (const _ of stream) {
        /* nothing expected */
      }
    })().catch((e) => e);
    expect(err.code).toBe(Code.FAILED_PRECONDITION);
  });

  it("refuses a bad session token with UNAUTHENTICATED SESSION_INVALID", async () => {
    const a = await TestAgent.register(h, { labels: { pool: pool() } });
    await expect(a.connect({ token: `${a.token.slice(0, -2)}xx` })).rejects.toThrow(/closed/);
    expect(a.error?.code).toBe(Code.UNAUTHENTICATED);
    expect(a.error?.reason).toBe("SESSION_INVALID");
  });

  it("a second stream of the same agent replaces the first (ABORTED, STREAM_REPLACED)", async () => {
    const a = await TestAgent.register(h, { labels: { pool: pool() } });
    await a.connect();
    // A status sent while the agent is writing can be lost in transit (see the final report on
    // mesh/grpc/server-adapter.ts); the agent under test is quiet here.
    a.stopHeartbeats();
    const second = await TestAgent.register(h, { name: "placeholder-unused" });
    second.id = a.id;
    second.token = a.token;
    second.client = a.client;
    await second.connect();
    await a.ended();
    expect(a.error?.code).toBe(Code.ABORTED);
    expect(a.error?.reason).toBe("STREAM_REPLACED");
    expect(second.closed).toBe(false);
    await second.close();
  });

  it("re-registering a name keeps the id and revokes the previous session", async () => {
    const name = `re-${randomBytes(3).toString("hex")}`;
    const a = await TestAgent.register(h, { name, labels: { pool: pool() } });
    await a.connect();
    a.stopHeartbeats();
    const again = await h
      .client({ type: "service", id: "agent-bootstrap" })
      .registerAgent({ agent: { name, capacity: 3 } });
    expect(again.agent?.id).toBe(a.id);
    expect(again.sessionToken).not.toBe(a.token);
    await a.ended();
    expect(a.error?.code).toBe(Code.UNAUTHENTICATED);
    await expect(a.connect()).rejects.toThrow(/closed/);
    expect(a.error?.reason).toBe("SESSION_INVALID");
    a.token = again.sessionToken;
    await a.connect();
    await a.close();
  });
});

describe("enqueue racing its own claim", () => {
  // One change per transaction and two transactions at once: an enqueue's claim often runs in a
  // batch before the one inserting its run, finds no row, and the run's "pending" notice arrives
  // while that claim is still in flight. The run must still be assigned at once, not left for
  // the periodic repair (a minute away here with the 60 s lease).
  let slow: AmHarness;
  beforeAll(async () => {
    slow = await startAgentManager({ AGENT_MANAGER_COMMIT_BATCH: "1", AGENT_MANAGER_LEASE_TTL: "60s" });
  });
  afterAll(async () => slow?.stop());

  it("assigns every run enqueued concurrently, none left PENDING for the repair", async () => {
    const p = pool();
    const a = await TestAgent.register(slow, { labels: { pool: p }, capacity: 256 });
    await a.connect();
    const n = 100;
    const runs = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        slow.client(SERVICE).enqueueRun({
          taskId: `race-${p}-${i}`,
          attempt: 1,
          workItemId: `wi-race-${i}`,
          projectId: "p1",
          agentSelector: { pool: p },
          workItem: snapshot("p1"),
        }),
      ),
    );
    expect(runs).toHaveLength(n);
    await eventually("every run assigned", () => a.assignments().length === n, 20_000);
    const pending = await slow.sql<{ n: number }>(
      "SELECT count(*)::int AS n FROM runs WHERE state = 1 AND task_id LIKE $1",
      [`race-${p}-%`],
    );
    expect(pending[0]?.n).toBe(0);
    await a.close();
  });
});
