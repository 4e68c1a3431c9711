/**
 * What the HTTP/2 front door must handle that well-behaved grpc-js clients never show: raw
 * frames (truncated, oversized, compressed, malformed), its own deadline, dead upstreams, and
 * large streams flowing through with backpressure. Raw calls use node:http2 directly.
 */

import { connect, type IncomingHttpHeaders } from "node:http2";
import { gzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentManagerService } from "../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { NotificationService } from "../../gen/codex/notification/v1/notification_service_pb.js";
import { WorkItemService } from "../../gen/codex/workitem/v1/workitem_service_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { Code, ServiceError } from "../../mesh/errors.js";
import { createClient } from "../../mesh/grpc/client.js";
import { eventually } from "../../mesh/nats/testing.js";
import { freePort } from "../../test/support/ports.js";
import { fakeUpstream, UpstreamLog } from "./testing/fake-upstreams.js";
import { startGateway, startUpstream, type TestGateway } from "./testing/harness.js";
import { bearer, testSecurity } from "./testing/test-security.js";
import { waitFor } from "./testing/wait.js";

const MAX = 256 * 1024;
const log = new UpstreamLog();
const security = testSecurity();
const upstreams: Awaited<ReturnType<typeof startUpstream>>[] = [];
let gw: TestGateway;
let agents: ReturnType<typeof createClient<typeof AgentManagerService>>;
let workItems: ReturnType<typeof createClient<typeof WorkItemService>>;
const auth = bearer("alice", { p1: "owner" });
const GET_RUN = "/codex.agentmanager.v1.AgentManagerService/GetRun";
const CONNECT = "/codex.agentmanager.v1.AgentManagerService/Connect";
const getRun = AgentManagerService.method.getRun;
const getRunRequest = (runId: string) => toBinary(getRun.input, create(getRun.input, { runId }));

beforeAll(async () => {
  upstreams.push(await startUpstream(fakeUpstream("a", log)), await startUpstream(fakeUpstream("b", log)));
  const [a, b] = upstreams.map((u) => u.running.address);
  const dead = `127.0.0.1:${await freePort()}`;
  gw = await startGateway(security, {
    AGENT_MANAGER_ADDR: `${a},${b}`,
    WORKITEM_ADDR: `${dead},${a}`,
    NOTIFICATION_ADDR: dead,
    GRPC_MAX_MESSAGE_BYTES: String(MAX),
  });
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

const frame = (payload: Uint8Array, compressed = false) => {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(payload.length, 1);
  return Buffer.concat([prefix, payload]);
};

interface RawAnswer {
  readonly headers: IncomingHttpHeaders;
  readonly trailers: IncomingHttpHeaders;
  readonly data: Buffer;
  /** grpc-status from the trailers, or from the headers of a trailers-only answer. */
  readonly code: number | undefined;
}

/** One call over a bare HTTP/2 stream, as any gRPC implementation could send it. */
function raw(path: string, body: Buffer, headers: Record<string, string> = {}): Promise<RawAnswer> {
  const session = connect(`http://${gw.grpcAddress}`);
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      authorization: auth,
      ...headers,
    });
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      head = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", reject);
    stream.on("close", () => {
      session.close();
      const status = trailers["grpc-status"] ?? head["grpc-status"];
      resolve({
        headers: head,
        trailers,
        data: Buffer.concat(chunks),
        code: status === undefined ? undefined : Number(status),
      });
    });
    stream.end(body);
  });
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (e: unknown) => ServiceError.from(e),
  );

describe("malformed and oversized requests", () => {
  it("refuses a truncated frame with INVALID_ARGUMENT, before any upstream sees it", async () => {
    const before = log.calls.length;
    const whole = frame(getRunRequest("t"));
    const res = await raw(GET_RUN, whole.subarray(0, whole.length - 1));
    expect(res.code).toBe(Code.INVALID_ARGUMENT);
    expect(res.headers["x-request-id"]).toBeDefined();
    expect(log.calls.length).toBe(before);
  });

  it("refuses a message that is not the method's protobuf with INVALID_ARGUMENT and a field violation", async () => {
    const res = await raw(GET_RUN, frame(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f])));
    expect(res.code).toBe(Code.INVALID_ARGUMENT);
    const details = fromBinary(
      StatusSchema,
      Buffer.from(String(res.trailers["grpc-status-details-bin"]), "base64"),
    );
    expect(details.message).toContain("malformed codex.agentmanager.v1.GetRunRequest");
    expect(details.details[0]?.typeUrl).toBe(`type.googleapis.com/${BadRequestSchema.typeName}`);
  });

  it("answers RESOURCE_EXHAUSTED on a declared length above the limit without waiting for the payload", async () => {
    const prefix = Buffer.from([0, 0x7f, 0xff, 0xff, 0xff]); // 2 GiB declared, 0 bytes sent
    const res = await raw(GET_RUN, prefix);
    expect(res.code).toBe(Code.RESOURCE_EXHAUSTED);
  });

  it("refuses an oversized unary request and an oversized message inside a client stream", async () => {
    const err = await failure(
      agents.getRun({ runId: "x".repeat(MAX + 1) }, { headers: { authorization: auth } }),
    );
    expect(err.code).toBe(Code.RESOURCE_EXHAUSTED);
    // A bidi stream: one ordinary message, then one above the limit.
    const connectIn = AgentManagerService.method.connect.input;
    const small = frame(toBinary(connectIn, create(connectIn, { messageSeq: 1n })));
    const stream = await raw(CONNECT, Buffer.concat([small, frame(Buffer.alloc(MAX + 1))]));
    expect(stream.code).toBe(Code.RESOURCE_EXHAUSTED);
  });

  it("answers non-gRPC requests as grpc-js does: 415 for another content type, UNIMPLEMENTED for unknown paths", async () => {
    expect(
      (await raw(GET_RUN, Buffer.alloc(0), { "content-type": "application/json" })).headers[":status"],
    ).toBe(415);
    const unknown = await raw("/codex.nothing.v1.Nothing/Call", frame(Buffer.alloc(0)));
    expect(unknown.code).toBe(Code.UNIMPLEMENTED);
  });

  it("decompresses a gzip request for the authorizer and forwards it still compressed", async () => {
    const req = getRunRequest("gz-run");
    const res = await raw(GET_RUN, frame(gzipSync(req), true), { "grpc-encoding": "gzip" });
    expect(res.code).toBe(Code.OK);
    expect(security.authorizer.seen.at(-1)?.request).toMatchObject({ runId: "gz-run" });
    // The upstream (grpc-js) decompressed the very bytes the client sent and answered.
    expect(fromBinary(getRun.output, res.data.subarray(5)).run?.id).toBe("gz-run");
    const odd = await raw(GET_RUN, frame(req, true), { "grpc-encoding": "snappy" });
    expect(odd.code).toBe(Code.UNIMPLEMENTED);
  });
});

describe("deadlines, cancellation and dead upstreams", () => {
  it("ends a call whose grpc-timeout passes with DEADLINE_EXCEEDED, and cancels the upstream", async () => {
    // The raw client enforces no deadline of its own: the status can only come from the gateway.
    const req = getRunRequest("hang-deadline");
    const res = await raw(GET_RUN, frame(req), { "grpc-timeout": "300m", "x-request-id": "deadline-1" });
    expect(res.code).toBe(Code.DEADLINE_EXCEEDED);
    const seen = log.calls.find((c) => c.requestId === "deadline-1");
    expect(seen?.deadline).toBeDefined(); // the remaining time went upstream as grpc-timeout
    await waitFor(() => log.cancelled.includes("hang-deadline"), "the upstream to see the cancellation");
  });

  it("a client cancelling a bidi stream cancels the upstream stream", async () => {
    const abort = new AbortController();
    const acks: bigint[] = [];
    const reqs = (async function* () {
      yield { messageSeq: 1n };
      await new Promise(() => {}); // keeps the stream open until the client aborts
    })();
    const err = await (async () => {
      try {
        for await (const m of agents.connect(reqs, {
          headers: { authorization: auth, "x-request-id": "bidi-cancel-1" },
          signal: abort.signal,
        })) {
          if (m.message.case === "ack") acks.push(m.message.value.ackedSeq);
          abort.abort();
        }
      } catch (e) {
        return ServiceError.from(e);
      }
      return undefined;
    })();
    expect(acks).toEqual([1n]);
    expect(err?.code).toBe(Code.CANCELLED);
    await waitFor(
      () => log.cancelled.includes("connect:bidi-cancel-1"),
      "the upstream to see the cancellation",
    );
  });

  it("answers UNAVAILABLE when the upstream's only replica cannot be reached", async () => {
    const notifications = createClient(NotificationService, {
      address: gw.grpcAddress,
      retry: false,
      breaker: false,
    });
    const err = await failure(
      notifications.getSubscription({ subscriptionId: "s" }, { headers: { authorization: auth } }),
    );
    notifications.close();
    expect(err.code).toBe(Code.UNAVAILABLE);
  });

  it("skips a replica that cannot be reached while another one answers", async () => {
    const upload = () =>
      workItems.uploadArtifact(
        (async function* () {
          yield { payload: { case: "header" as const, value: { workItemId: "w", name: "rr" } } };
        })(),
        { headers: { authorization: auth } },
      );
    // The dead replica costs at most the call that discovers it; then every call goes to "a".
    let failures = 0;
    let streak = 0;
    while (streak < 6) {
      const res = await upload().catch((e: unknown) => ServiceError.from(e));
      if (res instanceof ServiceError) {
        expect(res.code).toBe(Code.UNAVAILABLE);
        failures++;
        streak = 0;
      } else {
        expect(res.artifact?.id).toBe("artifact-a");
        streak++;
      }
      expect(failures).toBeLessThanOrEqual(1);
    }
  });
});

describe("streams through the byte relay", () => {
  it("carries a 16 MiB client stream in 128 KiB messages intact (windows fill, writers wait for drain)", async () => {
    const chunk = new Uint8Array(128 * 1024).fill(3);
    const res = await workItems.uploadArtifact(
      (async function* () {
        yield { payload: { case: "header" as const, value: { workItemId: "w", name: "big.tar" } } };
        for (let i = 0; i < 128; i++) yield { payload: { case: "chunk" as const, value: chunk } };
      })(),
      { headers: { authorization: auth } },
    );
    expect(res.artifact).toMatchObject({ name: "big.tar", sizeBytes: BigInt(128 * chunk.length) });
  });

  it("answers health and reflection on the front door without credentials", async () => {
    const res = await raw("/grpc.health.v1.Health/Check", frame(Buffer.alloc(0)), { authorization: "" });
    expect(res.code).toBe(Code.OK);
    expect([...res.data.subarray(5)]).toEqual([0x08, 0x01]); // HealthCheckResponse{status: SERVING}
  });
});

describe("restarts", () => {
  it("dials an upstream again after it restarted on the same address", async () => {
    const port = await freePort();
    const restartLog = new UpstreamLog();
    let upstream = await startUpstream(fakeUpstream("first", restartLog), { env: { PORT: String(port) } });
    const gateway = await startGateway(security, { AGENT_MANAGER_ADDR: `127.0.0.1:${port}` });
    const client = createClient(AgentManagerService, {
      address: gateway.grpcAddress,
      retry: false,
      breaker: false,
    });
    try {
      const call = () => client.getRun({ runId: "r1" }, { headers: { authorization: auth } });
      expect((await call()).run?.agentId).toBe("first");
      // The upstream goes away (its server closes the gateway's session) and comes back.
      await upstream.cleanup();
      upstream = await startUpstream(fakeUpstream("second", restartLog), { env: { PORT: String(port) } });
      let answered = "";
      await eventually(
        "a call answered by the restarted upstream",
        async () => {
          answered = (await call().catch(() => undefined))?.run?.agentId ?? "";
          return answered === "second";
        },
        15_000,
      );
      expect(answered).toBe("second");
    } finally {
      client.close();
      await gateway.cleanup();
      await upstream.cleanup();
    }
  });

  it("lets a call in flight finish when the gateway stops, and refuses calls after", async () => {
    const seen = new UpstreamLog();
    const upstream = await startUpstream(fakeUpstream("steady", seen));
    const gateway = await startGateway(security, { AGENT_MANAGER_ADDR: upstream.running.address });
    const client = createClient(AgentManagerService, {
      address: gateway.grpcAddress,
      retry: false,
      breaker: false,
    });
    const headers = { authorization: auth };
    try {
      expect((await client.getRun({ runId: "warm" }, { headers })).run?.id).toBe("warm");
      const inFlight = client.getRun({ runId: "slow-1" }, { headers });
      await eventually("the slow call reached the upstream", () => seen.calls.length === 2);
      const stopping = gateway.cleanup();
      expect((await inFlight).run?.id).toBe("slow-1");
      await stopping;
      const after = await client.getRun({ runId: "late" }, { headers, timeoutMs: 2_000 }).then(
        () => undefined,
        (err: unknown) => ServiceError.from(err),
      );
      expect(after?.code).toBe(Code.UNAVAILABLE);
    } finally {
      client.close();
      await upstream.cleanup();
    }
  });
});
