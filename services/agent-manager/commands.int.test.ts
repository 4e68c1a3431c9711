import { randomBytes, randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { anyPack, timestampNow } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentState } from "../../gen/codex/agentmanager/v1/agent_pb.js";
import { RunState } from "../../gen/codex/agentmanager/v1/run_pb.js";
import {
  ClaimRunRejectedSchema,
  ClaimRunSchema,
  RunAssignedSchema,
} from "../../gen/codex/events/v1/agent_events_pb.js";
import { ActorType, EventEnvelopeSchema } from "../../gen/codex/events/v1/envelope_pb.js";
import { encodeEnvelope } from "../../mesh/events/envelope.js";
import { publish } from "../../mesh/nats/publisher.js";
import { eventually } from "../../mesh/nats/testing.js";
import { type AmHarness, Code, SERVICE, snapshot, startAgentManager } from "./testing/harness.js";
import { TestAgent } from "./testing/test-agent.js";

let h: AmHarness;

beforeAll(async () => {
  h = await startAgentManager();
});
afterAll(async () => h?.stop());

async function command(runId: string, agentId: string): Promise<string> {
  const requestId = randomUUID();
  const env = create(EventEnvelopeSchema, {
    id: randomUUID(),
    type: ClaimRunSchema.typeName,
    aggregateType: "run",
    aggregateId: runId,
    occurredAt: timestampNow(),
    actor: { type: ActorType.USER, id: "operator" },
    payload: anyPack(ClaimRunSchema, create(ClaimRunSchema, { runId, agentId, requestId })),
    source: "ops",
  });
  const { js, subjects } = h.t.running.host.nats;
  await publish(js, subjects.command("agentmanager", "ClaimRun"), encodeEnvelope(env), { msgId: env.id });
  return requestId;
}

async function enqueue(selector: Record<string, string>) {
  const { run } = await h.client(SERVICE).enqueueRun({
    taskId: `cmd-${randomBytes(4).toString("hex")}`,
    attempt: 1,
    workItemId: "wi",
    projectId: "p1",
    agentSelector: selector,
    workItem: snapshot("p1"),
  });
  return run?.id ?? "";
}

describe("ClaimRun command", () => {
  it("leases a PENDING run to the named agent", async () => {
    const p = `pool-${randomBytes(3).toString("hex")}`;
    const u = await TestAgent.register(h, { labels: { pool: p } });
    // A unary agent, ONLINE after a claim that found nothing; it waits for no run.
    await u.client.claimRun({ agentId: u.id });
    expect((await h.client(SERVICE).getAgent({ agentId: u.id })).agent?.state).toBe(AgentState.ONLINE);
    const runId = await enqueue({ pool: p });
    await command(runId, u.id);
    await eventually(
      "leased by command",
      async () => (await h.client(SERVICE).getRun({ runId })).run?.state === RunState.ASSIGNED,
    );
    const run = (await h.client(SERVICE).getRun({ runId })).run;
    expect(run).toMatchObject({ agentId: u.id, fencingToken: 1n });
    const renewed = await u.client.renewLease({ runId, fencingToken: 1n });
    expect(renewed.lease?.valid).toBe(true);
    await eventually("RunAssigned", async () =>
      (await h.payloads(RunAssignedSchema)).some((e) => e.runId === runId),
    );
    // Replaying the command changes nothing.
    await command(runId, u.id);
    await new Promise((r) => setTimeout(r, 300));
    expect((await h.payloads(RunAssignedSchema)).filter((e) => e.runId === runId)).toHaveLength(1);
    expect((await h.payloads(ClaimRunRejectedSchema)).filter((e) => e.runId === runId)).toHaveLength(0);
  });

  it("publishes ClaimRunRejected for an agent that is full, OFFLINE or not eligible", async () => {
    const p = `pool-${randomBytes(3).toString("hex")}`;
    const full = await TestAgent.register(h, { labels: { pool: p }, capacity: 1 });
    await full.connect();
    await enqueue({ pool: p });
    await eventually("full holds one", () => full.assignments().length === 1);
    const waiting = await enqueue({ pool: p });
    const offline = await TestAgent.register(h, { labels: { pool: p } });
    const other = await TestAgent.register(h, { labels: { pool: "elsewhere" } });
    await other.client.claimRun({ agentId: other.id });
    const ids = [
      await command(waiting, full.id),
      await command(waiting, offline.id),
      await command(waiting, other.id),
    ];
    await eventually(
      "three rejections",
      async () =>
        (await h.payloads(ClaimRunRejectedSchema)).filter((e) => ids.includes(e.requestId)).length === 3,
    );
    const rejected = (await h.payloads(ClaimRunRejectedSchema)).filter((e) => ids.includes(e.requestId));
    const byRequest = new Map(rejected.map((e) => [e.requestId, e.status?.message ?? ""]));
    expect(byRequest.get(ids[0] ?? "")).toMatch(/capacity/);
    expect(byRequest.get(ids[1] ?? "")).toMatch(/OFFLINE/);
    expect(byRequest.get(ids[2] ?? "")).toMatch(/not eligible/);
    expect(rejected.every((e) => e.status?.code === Code.FAILED_PRECONDITION)).toBe(true);
    expect((await h.client(SERVICE).getRun({ runId: waiting })).run?.state).toBe(RunState.PENDING);
    await full.close();
  });
});
