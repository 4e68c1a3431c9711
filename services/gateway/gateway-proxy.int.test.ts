import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentManagerService } from "../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { WorkItemService } from "../../gen/codex/workitem/v1/workitem_service_pb.js";
import { Code, ServiceError } from "../../mesh/errors.js";
import { createClient } from "../../mesh/grpc/client.js";
import { BIG_FENCING_TOKEN, fakeUpstream, UpstreamLog } from "./testing/fake-upstreams.js";
import { rest, startGateway, startUpstream, type TestGateway } from "./testing/harness.js";
import { bearer, testSecurity } from "./testing/test-security.js";
import { waitFor } from "./testing/wait.js";

const log = new UpstreamLog();
const upstreams: Awaited<ReturnType<typeof startUpstream>>[] = [];
let gw: TestGateway;
let agents: ReturnType<typeof createClient<typeof AgentManagerService>>;
let workItems: ReturnType<typeof createClient<typeof WorkItemService>>;
const auth = { authorization: bearer("alice", { p1: "owner" }) };
const lastCall = (method: string) => log.calls.filter((c) => c.method === method).at(-1);

beforeAll(async () => {
  upstreams.push(await startUpstream(fakeUpstream("a", log)), await startUpstream(fakeUpstream("b", log)));
  const addrs = upstreams.map((u) => u.running.address).join(",");
  gw = await startGateway(testSecurity(), { AGENT_MANAGER_ADDR: addrs, WORKITEM_ADDR: addrs });
  const opts = { address: gw.grpcAddress, retry: false, breaker: false } as const;
  agents = createClient(AgentManagerService, opts);
  workItems = createClient(WorkItemService, opts);
});
afterAll(async () => {
  agents?.close();
  workItems?.close();
  await gw?.cleanup();
  for (const u of upstreams) await u.cleanup();
});

async function* messages<T>(items: T[]): AsyncIterable<T> {
  for (const m of items) yield m;
}

describe("gRPC proxy: the four call kinds, forwarded as bytes", () => {
  it("unary: same message out as in (uint64 beyond 2^53 intact), alternating replicas", async () => {
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await agents.getRun({ runId: `r${i}` }, { headers: auth });
      expect(res.run?.fencingToken).toBe(BIG_FENCING_TOKEN);
      seen.push(res.run!.agentId);
    }
    expect(new Set(seen)).toEqual(new Set(["a", "b"]));
    expect(seen[0]).not.toBe(seen[1]);
    expect(seen[0]).toBe(seen[2]);
  });

  it("server streaming: every message, then the end", async () => {
    const got: string[] = [];
    for await (const m of agents.watchRunLogs({ runId: "s1" }, { headers: auth })) {
      got.push(m.entries[0]?.text ?? (m.endOfLogs ? "end" : "?"));
    }
    expect(got).toEqual(["s1 line 0", "s1 line 1", "s1 line 2", "end"]);
  });

  it("client streaming: an artifact upload in chunks", async () => {
    const chunk = new Uint8Array(64 * 1024).fill(7);
    const res = await workItems.uploadArtifact(
      messages([
        { payload: { case: "header" as const, value: { workItemId: "w1", name: "build.tar" } } },
        ...Array.from({ length: 20 }, () => ({ payload: { case: "chunk" as const, value: chunk } })),
      ]),
      { headers: auth },
    );
    expect(res.artifact).toMatchObject({ name: "build.tar", sizeBytes: BigInt(20 * chunk.length) });
  });

  it("bidi streaming: the agents' Connect session", async () => {
    const acks: bigint[] = [];
    const reqs = [1n, 2n, 3n].map((messageSeq) => ({ messageSeq }));
    for await (const m of agents.connect(messages(reqs), { headers: auth })) {
      if (m.message.case === "ack") acks.push(m.message.value.ackedSeq);
    }
    expect(acks).toEqual([1n, 2n, 3n]);
  });
});

describe("what the upstream sees", () => {
  it("the signed principal, request id, trace context and the client's own metadata — not its credentials", async () => {
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    await agents.getRun(
      { runId: "meta" },
      { headers: { ...auth, "x-request-id": "proxy-req-1", traceparent, "x-client-tag": "ci" } },
    );
    const call = lastCall("GetRun")!;
    expect(call.principal).toEqual({ type: "user", id: "alice", projectRoles: { p1: "owner" } });
    expect(call.requestId).toBe("proxy-req-1");
    expect(call.correlationId).toBe("proxy-req-1");
    expect(call.metadata["x-client-tag"]).toBe("ci");
    expect(call.metadata.authorization).toBeUndefined();
    expect(String(call.metadata.traceparent)).toMatch(
      /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/,
    );
    expect(call.metadata.traceparent).not.toBe(traceparent); // the gateway's own span is the parent
  });

  it("the same over REST, with Grpc-Metadata-* headers passed as metadata", async () => {
    const res = await rest(gw.httpUrl, "GET", "/v1/runs/rest-meta", {
      auth: auth.authorization,
      headers: { "grpc-metadata-x-client-tag": "curl", "x-request-id": "rest-req-1" },
    });
    expect(res.json).toMatchObject({ run: { id: "rest-meta", fencingToken: BIG_FENCING_TOKEN.toString() } });
    const call = lastCall("GetRun")!;
    expect(call).toMatchObject({ requestId: "rest-req-1", principal: { id: "alice" } });
    expect(call.metadata["x-client-tag"]).toBe("curl");
  });

  it("the client's deadline (gRPC), the Grpc-Timeout or the default cap (REST)", async () => {
    let before = Date.now();
    await agents.getRun({ runId: "deadline" }, { headers: auth, timeoutMs: 4_000 });
    let deadline = lastCall("GetRun")!.deadline!.getTime();
    expect(deadline).toBeGreaterThan(before + 3_000);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 4_000);
    before = Date.now();
    await rest(gw.httpUrl, "GET", "/v1/runs/d2", {
      auth: auth.authorization,
      headers: { "grpc-timeout": "2S" },
    });
    deadline = lastCall("GetRun")!.deadline!.getTime();
    expect(deadline).toBeGreaterThan(before + 1_000);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 2_000);
    await rest(gw.httpUrl, "GET", "/v1/runs/d3", { auth: auth.authorization });
    expect(lastCall("GetRun")!.deadline!.getTime()).toBeGreaterThan(Date.now() + 20_000);
  });

  it("cancellation: a gRPC client leaving a followed stream cancels the upstream call", async () => {
    const it = agents.watchRunLogs({ runId: "grpc-followed", follow: true }, { headers: auth });
    let n = 0;
    for await (const _ of it) if (++n === 3) break;
    await waitFor(() => log.cancelled.includes("grpc-followed"), "the upstream to see the cancellation");
  });

  it("cancellation: a gRPC client giving up on a unary call cancels the upstream call", async () => {
    const abort = new AbortController();
    const headers = { ...auth, "x-request-id": "hang-grpc-1" };
    const call = agents.getRun({ runId: "hang-grpc" }, { headers, signal: abort.signal });
    await waitFor(
      () => log.calls.some((c) => c.requestId === "hang-grpc-1"),
      "the call to reach the upstream",
    );
    abort.abort();
    const err = await call.catch((e: unknown) => ServiceError.from(e));
    expect((err as ServiceError).code).toBe(Code.CANCELLED);
    await waitFor(() => log.cancelled.includes("hang-grpc"), "the upstream to see the cancellation");
  });

  it("upstream errors keep their code and details (NOT_FOUND with ResourceInfo)", async () => {
    const err = await agents
      .getRun({ runId: "missing" }, { headers: auth })
      .catch((e: unknown) => ServiceError.from(e));
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as ServiceError).code).toBe(Code.NOT_FOUND);
    expect((err as ServiceError).details[0]?.typeUrl).toBe("type.googleapis.com/google.rpc.ResourceInfo");
  });
});
