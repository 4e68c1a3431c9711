import { randomBytes } from "node:crypto";
import { toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InfoRequestState } from "../../gen/codex/agentmanager/v1/info_request_pb.js";
import { InfoAnsweredSchema, InfoRequestedSchema } from "../../gen/codex/events/v1/agent_events_pb.js";
import { EventEnvelopeSchema } from "../../gen/codex/events/v1/envelope_pb.js";
import { eventually } from "../../mesh/nats/testing.js";
import {
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
const PROJECT = "p-info";
const who = people(PROJECT);
const SECRET = `AKIA-${randomBytes(12).toString("hex")}`;

beforeAll(async () => {
  h = await startAgentManager();
});
afterAll(async () => h?.stop());

describe("info requests", () => {
  it("asked by the agent, answered by a maintainer, delivered only to the holder, sealed and redacted elsewhere", async () => {
    const p = `pool-${randomBytes(3).toString("hex")}`;
    const holder = await TestAgent.register(h, { labels: { pool: p } });
    const bystander = await TestAgent.register(h, { labels: { pool: `${p}-other` } });
    await holder.connect();
    await bystander.connect();
    const { run } = await h.client(SERVICE).enqueueRun({
      taskId: `info-task-${p}`,
      attempt: 1,
      workItemId: "wi-info",
      projectId: PROJECT,
      agentSelector: { pool: p },
      workItem: snapshot(PROJECT),
    });
    const runId = run?.id ?? "";
    await eventually("assigned", () => holder.assignments().length === 1);
    const ask = holder.send({
      case: "infoRequest",
      value: {
        requestId: "creds-1",
        runId,
        fencingToken: holder.tokenOf(runId),
        reason: "need cloud credentials",
        fields: [
          { name: "AWS_ACCESS_KEY_ID", description: "key id", secret: true },
          { name: "REGION", description: "region" },
        ],
      },
    });
    const ack = await holder.waitFor(
      (m) => m.message.case === "ack" && m.message.value.infoRequests.length > 0,
    );
    const created = ack.message.case === "ack" ? ack.message.value.infoRequests[0] : undefined;
    expect(created?.requestId).toBe("creds-1");
    expect(ack.message.case === "ack" && ack.message.value.ackedSeq).toBeGreaterThanOrEqual(ask);
    const id = created?.infoRequestId ?? "";

    const listed = await h.client(who.viewer).listInfoRequests({ runId });
    expect(listed.infoRequests.map((r) => [r.id, r.state])).toEqual([[id, InfoRequestState.PENDING]]);
    await failure(
      h
        .client(who.viewer)
        .answerInfoRequest({ infoRequestId: id, values: { AWS_ACCESS_KEY_ID: SECRET, REGION: "eu" } }),
      Code.PERMISSION_DENIED,
    );
    const incomplete = await failure(
      h
        .client(who.maintainer)
        .answerInfoRequest({ infoRequestId: id, values: { AWS_ACCESS_KEY_ID: SECRET } }),
      Code.INVALID_ARGUMENT,
    );
    expect(incomplete.reason).toBe("ANSWER_INCOMPLETE");

    const answered = await h.client(who.maintainer).answerInfoRequest({
      infoRequestId: id,
      values: { AWS_ACCESS_KEY_ID: SECRET, REGION: "eu-west-1" },
    });
    expect(answered.infoRequest).toMatchObject({ state: InfoRequestState.ANSWERED, answeredBy: "bob" });
    const delivered = await holder.waitFor((m) => m.message.case === "infoAnswer");
    expect(delivered.message.case === "infoAnswer" && delivered.message.value).toMatchObject({
      infoRequestId: id,
      runId,
      requestId: "creds-1",
      values: { AWS_ACCESS_KEY_ID: SECRET, REGION: "eu-west-1" },
    });
    await new Promise((r) => setTimeout(r, 150));
    expect(bystander.received.some((m) => m.message.case === "infoAnswer")).toBe(false);

    // Not readable through the API.
    const got = await h.client(who.viewer).getInfoRequest({ infoRequestId: id });
    const listedAgain = await h.client(who.viewer).listInfoRequests({ projectId: PROJECT });
    for (const view of [got, listedAgain])
      expect(JSON.stringify(view, (_k, v) => (typeof v === "bigint" ? String(v) : v))).not.toContain(SECRET);
    // Stored sealed: the raw column is not the plaintext.
    const [row] = await h.sql<{ answer_sealed: Buffer }>(
      "SELECT answer_sealed FROM info_requests WHERE id = $1",
      [id],
    );
    expect(row?.answer_sealed.length).toBeGreaterThan(SECRET.length);
    expect(row?.answer_sealed.toString("latin1")).not.toContain(SECRET);
    expect(row?.answer_sealed.toString("latin1")).not.toContain("eu-west-1");
    // Not in any event.
    await eventually("InfoAnswered published", async () =>
      (await h.payloads(InfoAnsweredSchema)).some((e) => e.infoRequestId === id),
    );
    const answeredEvent = (await h.payloads(InfoAnsweredSchema)).find((e) => e.infoRequestId === id);
    expect(answeredEvent?.fieldNames).toEqual(["AWS_ACCESS_KEY_ID", "REGION"]);
    expect((await h.payloads(InfoRequestedSchema)).some((e) => e.infoRequest?.id === id)).toBe(true);
    for (const e of await h.events())
      expect(Buffer.from(toBinary(EventEnvelopeSchema, e)).toString("latin1")).not.toContain(SECRET);
    // Redacted from the run's logs.
    await holder.acked(holder.log(runId, 1, `export KEY=${SECRET}\n`));
    const logs = await h.client(who.viewer).listRunLogs({ runId });
    expect(logs.entries.map((e) => e.text)).toEqual(["export KEY=[REDACTED]"]);

    // When the run ends the sealed values are erased.
    await holder.acked(holder.complete(runId));
    const [after] = await h.sql<{ answer_sealed: Buffer | null }>(
      "SELECT answer_sealed FROM info_requests WHERE id = $1",
      [id],
    );
    expect(after?.answer_sealed).toBeNull();
    await holder.close();
    await bystander.close();
  });

  it("a stale agent cannot ask, and a pending request is cancelled when its run ends", async () => {
    const p = `pool-${randomBytes(3).toString("hex")}`;
    const a = await TestAgent.register(h, { labels: { pool: p } });
    await a.connect();
    const { run } = await h.client(SERVICE).enqueueRun({
      taskId: `info-task-${p}`,
      attempt: 1,
      workItemId: "wi-info-2",
      projectId: PROJECT,
      agentSelector: { pool: p },
      workItem: snapshot(PROJECT),
    });
    const runId = run?.id ?? "";
    await eventually("assigned", () => a.assignments().length === 1);
    const stale = await failure(
      a.client.requestInfo({ runId, fencingToken: 7n, fields: [{ name: "X" }] }),
      Code.FAILED_PRECONDITION,
    );
    expect(stale.reason).toBe("STALE_LEASE");
    await failure(a.client.requestInfo({ runId, fencingToken: 1n, fields: [] }), Code.INVALID_ARGUMENT);
    const { infoRequest } = await a.client.requestInfo({
      runId,
      fencingToken: 1n,
      fields: [{ name: "TOKEN" }],
      requestId: "r1",
    });
    const replay = await a.client.requestInfo({
      runId,
      fencingToken: 1n,
      fields: [{ name: "TOKEN" }],
      requestId: "r1",
    });
    expect(replay.infoRequest?.id).toBe(infoRequest?.id);
    await a.acked(a.complete(runId));
    const after = await h.client(who.viewer).getInfoRequest({ infoRequestId: infoRequest?.id ?? "" });
    expect(after.infoRequest?.state).toBe(InfoRequestState.CANCELLED);
    await failure(
      h
        .client(who.maintainer)
        .answerInfoRequest({ infoRequestId: infoRequest?.id ?? "", values: { TOKEN: "t" } }),
      Code.FAILED_PRECONDITION,
    );
    await a.close();
  });
});
