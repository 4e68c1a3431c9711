import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../../gen/codex/agentmanager/v1/run_pb.js";
import { RunCompletedSchema } from "../../gen/codex/events/v1/agent_events_pb.js";
import { eventually } from "../../mesh/nats/testing.js";
import { createRedis } from "../../mesh/redis.js";
import { REDIS_URL } from "../../test/support/harness.js";
import { ADMIN, type AmHarness, SERVICE, snapshot, startAgentManager } from "./testing/harness.js";
import { TestAgent } from "./testing/test-agent.js";

let h: AmHarness;
let seq = 0;

beforeAll(async () => {
  h = await startAgentManager({ AGENT_MANAGER_CANCEL_GRACE: "300ms" });
});
afterAll(async () => h?.stop());

async function leased(capacity = 1) {
  const p = `pool-${randomBytes(3).toString("hex")}`;
  const a = await TestAgent.register(h, { labels: { pool: p }, capacity });
  await a.connect();
  seq += 1;
  const { run } = await h.client(SERVICE).enqueueRun({
    taskId: `res-task-${seq}`,
    attempt: 1,
    workItemId: `wi-${seq}`,
    projectId: "p1",
    agentSelector: { pool: p },
    workItem: snapshot("p1"),
  });
  await eventually("assigned", () => a.assignments().length === 1);
  return { a, runId: run?.id ?? "" };
}

const getRun = async (runId: string) => (await h.client(SERVICE).getRun({ runId })).run;

describe("deadlines", () => {
  it("a cancelled run whose agent does not stop is CANCELLED after the grace time", async () => {
    const { a, runId } = await leased();
    await a.acked(a.start(runId));
    await h.client(ADMIN).cancelRun({ runId, reason: "stop" });
    await a.waitFor((m) => m.message.case === "cancel");
    await eventually(
      "CANCELLED after the grace",
      async () => (await getRun(runId))?.state === RunState.CANCELLED,
      5_000,
    );
    expect((await getRun(runId))?.error).toMatch(/grace/);
    const hb = a.heartbeat();
    const ack = await a.waitFor(
      (m) => m.message.case === "ack" && m.message.value.ackedSeq >= hb && m.message.value.leases.length > 0,
    );
    expect(ack.message.case === "ack" && ack.message.value.leases[0]?.valid).toBe(false);
    await eventually("RunCompleted", async () =>
      (await h.payloads(RunCompletedSchema)).some((e) => e.runId === runId),
    );
    await a.close();
  });

  it("a drain deadline cancels the runs still held", async () => {
    const { a, runId } = await leased();
    await h.client(ADMIN).drainAgent({ agentId: a.id, reason: "retire", deadline: { nanos: 200_000_000 } });
    const notice = await a.waitFor((m) => m.message.case === "drain");
    expect(notice.message.case === "drain" && notice.message.value.deadline).toBeDefined();
    const cancel = await a.waitFor((m) => m.message.case === "cancel", 5_000);
    expect(cancel.message.case === "cancel" && cancel.message.value).toMatchObject({
      runId,
      reason: "drain deadline passed",
    });
    await a.acked(a.complete(runId, RunState.CANCELLED));
    expect((await getRun(runId))?.state).toBe(RunState.CANCELLED);
    await a.close();
  });
});

describe("losing Redis", () => {
  it("loses no run: leases are rebuilt from Postgres and renewals keep working", async () => {
    const { a, runId } = await leased();
    await a.acked(a.start(runId));
    const redis = createRedis(REDIS_URL);
    try {
      const keys = await redis.keys(`${h.redisPrefix}*`);
      expect(keys.length).toBeGreaterThan(0);
      await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
    // Several lease TTLs (600 ms) pass with heartbeats; the run must stay with its agent.
    await new Promise((r) => setTimeout(r, 1_500));
    const run = await getRun(runId);
    expect(run).toMatchObject({ state: RunState.RUNNING, fencingToken: 1n, leaseExpiries: 0, agentId: a.id });
    const hb = a.heartbeat();
    const ack = await a.waitFor(
      (m) => m.message.case === "ack" && m.message.value.ackedSeq >= hb && m.message.value.leases.length > 0,
    );
    expect(ack.message.case === "ack" && ack.message.value.leases[0]?.valid).toBe(true);
    await a.acked(a.complete(runId));
    expect((await getRun(runId))?.state).toBe(RunState.SUCCEEDED);
    // And the store works again: a silent agent's lease still expires.
    const { a: silent, runId: other } = await leased();
    silent.stopHeartbeats();
    silent.startHeartbeats(60, false);
    await eventually(
      "expired after the rebuild",
      async () => ((await getRun(other))?.leaseExpiries ?? 0) >= 1,
      5_000,
    );
    await a.close();
    await silent.close();
  });
});
