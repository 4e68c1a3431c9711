import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../../gen/codex/agentmanager/v1/run_pb.js";
import { RunCompletedSchema, RunLeaseExpiredSchema } from "../../gen/codex/events/v1/agent_events_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { eventually } from "../../mesh/nats/testing.js";
import { type AmHarness, Code, failure, SERVICE, snapshot, startAgentManager } from "./testing/harness.js";
import { TestAgent } from "./testing/test-agent.js";

let h: AmHarness;
let seq = 0;

beforeAll(async () => {
  h = await startAgentManager();
});
afterAll(async () => h?.stop());

const pool = () => `pool-${randomBytes(3).toString("hex")}`;

async function enqueue(selector: Record<string, string>, on: AmHarness = h) {
  seq += 1;
  const { run } = await on.client(SERVICE).enqueueRun({
    taskId: `lease-task-${seq}`,
    attempt: 1,
    workItemId: `wi-${seq}`,
    projectId: "p1",
    agentSelector: selector,
    workItem: snapshot("p1"),
  });
  if (!run) throw new Error("no run");
  return run;
}

const getRun = async (runId: string, on: AmHarness = h) => (await on.client(SERVICE).getRun({ runId })).run;
const heartbeatCount = async (on: AmHarness = h) =>
  (await on.t.running.host.metrics.registry.getSingleMetric("agent_manager_heartbeats_total")?.get())
    ?.values[0]?.value ?? 0;
/** xmin changes with every UPDATE of a row, even one that writes the same values. */
const xmin = async (table: "runs" | "agents", id: string, on: AmHarness = h) =>
  (await on.sql<{ x: string }>(`SELECT xmin::text AS x FROM ${table} WHERE id = $1`, [id]))[0]?.x;

describe("lease renewal", () => {
  // Its own manager, with a lease long enough (1.2 s) and an OFFLINE limit loose enough (2 s) that
  // a scheduling stall on a busy CI machine, which holds up this process's beats and its
  // manager alike, does not pass for an agent that stopped beating.
  let steady: AmHarness;
  beforeAll(async () => {
    steady = await startAgentManager({
      AGENT_MANAGER_LEASE_TTL: "1200ms",
      AGENT_MANAGER_OFFLINE_AFTER_INTERVALS: "20",
    });
  });
  afterAll(async () => steady?.stop());

  it("heartbeats extend the lease without writing Postgres per beat", async () => {
    const p = pool();
    const a = await TestAgent.register(steady, { labels: { pool: p } });
    await a.connect({ heartbeatMs: 0 });
    const run = await enqueue({ pool: p }, steady);
    await eventually("assigned", () => a.assignments().length === 1);
    const start = a.start(run.id);
    await a.acked(start);
    const first = await getRun(run.id, steady);
    const runXmin = await xmin("runs", run.id, steady);
    const agentXmin = await xmin("agents", a.id, steady);
    const beatsBefore = await heartbeatCount(steady);
    // Two and a half lease TTLs (1.2 s each) of beats every 100 ms: without them the lease would
    // have expired twice.
    let last = 0n;
    for (let i = 0; i < 30; i++) {
      last = a.heartbeat();
      await new Promise((r) => setTimeout(r, 100));
    }
    const ack = await a.waitFor(
      (m) =>
        m.message.case === "ack" && m.message.value.ackedSeq >= last && m.message.value.leases.length > 0,
    );
    const lease = ack.message.case === "ack" ? ack.message.value.leases[0] : undefined;
    expect(lease).toMatchObject({ runId: run.id, valid: true, fencingToken: 1n, cancelRequested: false });
    const now = await getRun(run.id, steady);
    expect(now?.state).toBe(RunState.RUNNING);
    expect(now?.fencingToken).toBe(1n);
    expect(now?.leaseExpiries).toBe(0);
    expect(
      Number(now?.leaseExpireTime?.seconds) * 1000 + (now?.leaseExpireTime?.nanos ?? 0) / 1e6,
    ).toBeGreaterThan(
      Number(first?.leaseExpireTime?.seconds) * 1000 + (first?.leaseExpireTime?.nanos ?? 0) / 1e6 + 1_000,
    );
    expect((await heartbeatCount(steady)) - beatsBefore).toBeGreaterThanOrEqual(30);
    expect(await xmin("runs", run.id, steady)).toBe(runXmin);
    expect(await xmin("agents", a.id, steady)).toBe(agentXmin);
    a.complete(run.id);
    await a.close();
  });
});

describe("leases", () => {
  it("an expired lease requeues the run with a higher token; the old holder is refused STALE_LEASE", async () => {
    const p = pool();
    const old = await TestAgent.register(h, { labels: { pool: p } });
    await old.connect({ renew: false });
    const run = await enqueue({ pool: p });
    await eventually("assigned to old", () => old.assignments().length === 1);
    // The old holder logs half a line, goes silent (its process hangs, say) and its lease runs out.
    await old.acked(old.log(run.id, 1, "old holder's unfinished line"));
    await old.close();
    await eventually("lease expired", async () => (await getRun(run.id))?.leaseExpiries === 1, 5_000);
    const next = await TestAgent.register(h, { labels: { pool: p } });
    await next.connect();
    await eventually("re-offered", () => next.assignments().length === 1);
    expect(next.assignments()[0]?.fencingToken).toBe(2n);
    const expired = (await h.payloads(RunLeaseExpiredSchema)).find((e) => e.runId === run.id);
    expect(expired).toMatchObject({ agentId: old.id, fencingToken: 1n, leaseExpiries: 1, requeued: true });

    // Unary calls of the old holder: FAILED_PRECONDITION, reason STALE_LEASE in our domain.
    const err = await failure(
      old.client.completeRun({ runId: run.id, fencingToken: 1n, status: RunState.SUCCEEDED }),
      Code.FAILED_PRECONDITION,
    );
    const info = err.findDetail(ErrorInfoSchema);
    expect(info).toMatchObject({ reason: "STALE_LEASE", domain: "codex.agentmanager.v1" });
    expect(info?.metadata).toMatchObject({ run_id: run.id, current_state: "ASSIGNED" });
    const logErr = await failure(
      old.client.appendLogs({
        runId: run.id,
        fencingToken: 1n,
        chunks: [{ seq: 1n, stream: 1, data: new TextEncoder().encode("x\n") }],
      }),
      Code.FAILED_PRECONDITION,
    );
    expect(logErr.reason).toBe("STALE_LEASE");
    // The same on a stream: a StreamError, and the stream stays open.
    await old.connect({ renew: false });
    const bad = old.send({
      case: "logs",
      value: {
        runId: run.id,
        fencingToken: 1n,
        chunks: [{ seq: 1n, stream: 1, data: new Uint8Array([0x61]) }],
      },
    });
    const streamErr = await old.waitFor(
      (m) => m.message.case === "error" && m.message.value.messageSeq === bad,
    );
    expect(streamErr.message.case === "error" && streamErr.message.value).toMatchObject({
      code: Code.FAILED_PRECONDITION,
      reason: "STALE_LEASE",
      runId: run.id,
    });
    expect(old.closed).toBe(false);
    // Renewal of the stale lease reports it invalid.
    const hb = old.heartbeat([{ runId: run.id, token: 1n }]);
    const ack = await old.waitFor(
      (m) => m.message.case === "ack" && m.message.value.ackedSeq >= hb && m.message.value.leases.length > 0,
    );
    expect(ack.message.case === "ack" && ack.message.value.leases[0]?.valid).toBe(false);
    // The new holder's output is not glued to the old holder's unfinished line.
    await next.acked(next.log(run.id, 2, "new holder line\n"));
    const logs = await h.client(SERVICE).listRunLogs({ runId: run.id });
    expect(logs.entries.map((e) => e.text)).toEqual(["old holder's unfinished line", "new holder line"]);
    // The new holder completes normally.
    const done = next.complete(run.id);
    await next.acked(done);
    expect((await getRun(run.id))?.state).toBe(RunState.SUCCEEDED);
    await old.close();
    await next.close();
  });

  it("after 3 expiries the run is LOST and RunCompleted(LOST) is published once", async () => {
    const p = pool();
    const flaky = await TestAgent.register(h, { labels: { pool: p }, capacity: 1 });
    await flaky.connect({ renew: false });
    const run = await enqueue({ pool: p });
    await eventually("LOST", async () => (await getRun(run.id))?.state === RunState.LOST, 10_000);
    const final = await getRun(run.id);
    expect(final).toMatchObject({ leaseExpiries: 3, fencingToken: 3n, agentId: flaky.id });
    expect(final?.error).toMatch(/lease expired 3 times/);
    expect(flaky.assignments().map((x) => x.fencingToken)).toEqual([1n, 2n, 3n]);
    await eventually("RunCompleted published", async () =>
      (await h.payloads(RunCompletedSchema)).some((e) => e.runId === run.id),
    );
    const completed = (await h.payloads(RunCompletedSchema)).filter((e) => e.runId === run.id);
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({
      status: RunState.LOST,
      taskId: run.taskId,
      attempt: 1,
      agentId: flaky.id,
    });
    const expiries = (await h.payloads(RunLeaseExpiredSchema)).filter((e) => e.runId === run.id);
    expect(expiries.map((e) => e.requeued)).toEqual([true, true, false]);
    await flaky.close();
  });

  it("publishes RunCompleted exactly once when the completion is retried", async () => {
    const p = pool();
    const a = await TestAgent.register(h, { labels: { pool: p } });
    await a.connect();
    const run = await enqueue({ pool: p });
    await eventually("assigned", () => a.assignments().length === 1);
    await a.acked(a.start(run.id));
    const token = a.tokenOf(run.id);
    const first = await a.client.completeRun({
      runId: run.id,
      fencingToken: token,
      status: RunState.FAILED,
      exitCode: 2,
      error: "step 1 failed",
    });
    const again = await a.client.completeRun({
      runId: run.id,
      fencingToken: token,
      status: RunState.FAILED,
      exitCode: 2,
      error: "step 1 failed",
    });
    expect(again.run?.etag).toBe(first.run?.etag);
    const onStream = a.send({
      case: "complete",
      value: { runId: run.id, fencingToken: token, status: RunState.FAILED, exitCode: 2 },
    });
    await a.acked(onStream);
    expect(
      a.received.some((m) => m.message.case === "error" && m.message.value.messageSeq === onStream),
    ).toBe(false);
    // Another outcome for the ended run is refused.
    const other = await failure(
      a.client.completeRun({ runId: run.id, fencingToken: token, status: RunState.SUCCEEDED }),
      Code.FAILED_PRECONDITION,
    );
    expect(other.reason).toBe("STALE_LEASE");
    await eventually("RunCompleted published", async () =>
      (await h.payloads(RunCompletedSchema)).some((e) => e.runId === run.id),
    );
    await new Promise((r) => setTimeout(r, 200));
    const completed = (await h.payloads(RunCompletedSchema)).filter((e) => e.runId === run.id);
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({
      status: RunState.FAILED,
      exitCode: 2,
      error: "step 1 failed",
      agentId: a.id,
    });
    expect(completed[0]?.runDuration).toBeDefined();
    expect(completed[0]?.queueDuration).toBeDefined();
    await a.close();
  });

  it("resumes runs on reconnect when the token is current, refuses stale ones", async () => {
    const p = pool();
    const a = await TestAgent.register(h, { labels: { pool: p }, capacity: 2 });
    await a.connect();
    const run = await enqueue({ pool: p });
    await eventually("assigned", () => a.assignments().length === 1);
    await a.close();
    const welcome = await a.connect({
      resume: [
        { runId: run.id, token: a.tokenOf(run.id) },
        { runId: run.id, token: 99n },
      ],
    });
    const resumed = welcome.message.case === "welcome" ? welcome.message.value.resumed : [];
    expect(resumed.map((r) => r.valid)).toEqual([true, false]);
    a.complete(run.id);
    await eventually("SUCCEEDED", async () => (await getRun(run.id))?.state === RunState.SUCCEEDED);
    await a.close();
  });
});
