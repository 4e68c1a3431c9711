import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fakeUpstream, UpstreamLog } from "./testing/fake-upstreams.js";
import { rest, startGateway, startUpstream, type TestGateway } from "./testing/harness.js";
import { bearer, testSecurity } from "./testing/test-security.js";
import { waitFor } from "./testing/wait.js";

const log = new UpstreamLog();
const security = testSecurity();
const upstreams: Awaited<ReturnType<typeof startUpstream>>[] = [];
let gw: TestGateway;
const auth = bearer("alice");

beforeAll(async () => {
  upstreams.push(await startUpstream(fakeUpstream("a", log)), await startUpstream(fakeUpstream("b", log)));
  gw = await startGateway(security, {
    AGENT_MANAGER_ADDR: upstreams.map((u) => u.running.address).join(","),
  });
});
afterAll(async () => {
  await gw?.cleanup();
  for (const u of upstreams) await u.cleanup();
});

const lines = (text: string) =>
  text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("server streaming over REST", () => {
  it("writes NDJSON {result} lines, with query parameters mapped and the request shown to the authorizer", async () => {
    const q = "filter.streams=LOG_STREAM_STDERR&start_offset=9007199254740990";
    const res = await rest(gw.httpUrl, "GET", `/v1/runs/r1/logs:watch?${q}`, { auth });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const out = lines(res.text);
    expect(out).toHaveLength(4);
    expect(out[0]).toEqual({
      result: {
        entries: [
          { offset: "9007199254740990", stream: "LOG_STREAM_STDERR", text: "r1 line 9007199254740990" },
        ],
        endOfLogs: false,
      },
    });
    expect(out[3]).toEqual({ result: { entries: [], endOfLogs: true } });
    const seen = security.authorizer.seen.find((s) => s.path.endsWith("/WatchRunLogs"));
    expect(seen?.request).toMatchObject({ runId: "r1", startOffset: 9007199254740990n });
  });

  it("writes SSE data frames and an end event when asked for text/event-stream", async () => {
    const res = await rest(gw.httpUrl, "GET", "/v1/runs/r2/logs:watch", {
      auth,
      headers: { accept: "text/event-stream" },
    });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const frames = res.text.split("\n\n").filter(Boolean);
    expect(frames).toHaveLength(5);
    expect(frames[0]).toMatch(/^data: \{"entries":\[\{"offset":"0".*"text":"r2 line 0"/);
    expect(frames[4]).toBe("event: end\ndata: {}");
  });

  it("ends a failing stream with the error shape: an NDJSON {error} line, an SSE error event", async () => {
    const nd = await rest(gw.httpUrl, "GET", "/v1/runs/failing/logs:watch", { auth });
    const out = lines(nd.text);
    expect(out).toHaveLength(4);
    expect(out[3]).toMatchObject({
      error: {
        code: 9,
        message: "log store lost the run",
        details: expect.arrayContaining([expect.objectContaining({ reason: "LOGS_LOST" })]),
      },
    });
    const sse = await rest(gw.httpUrl, "GET", "/v1/runs/failing/logs:watch", {
      auth,
      headers: { accept: "text/event-stream" },
    });
    const last = sse.text.trim().split("\n\n").at(-1) ?? "";
    expect(last.split("\n")[0]).toBe("event: error");
    expect(JSON.parse(last.split("\n")[1]!.slice("data: ".length))).toMatchObject({ code: 9 });
  });

  it("answers an error before any message with its HTTP status", async () => {
    const unauthenticated = await rest(gw.httpUrl, "GET", "/v1/runs/r1/logs:watch");
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.json).toMatchObject({ code: 16 });
  });

  it("follows a run's logs with curl -N, and stopping curl cancels the upstream call", async () => {
    const url = `${gw.httpUrl}/v1/runs/followed/logs:watch?follow=true`;
    const curl = spawn("curl", ["-sN", "-H", `authorization: ${auth}`, url]);
    let received = "";
    curl.stdout.on("data", (chunk: Buffer) => {
      received += chunk.toString();
    });
    await waitFor(() => received.split("\n").filter(Boolean).length >= 3, "three lines through curl");
    expect(lines(received)[2]).toMatchObject({ result: { entries: [{ text: "followed line 2" }] } });
    expect(log.cancelled).not.toContain("followed");
    curl.kill("SIGINT");
    await waitFor(() => log.cancelled.includes("followed"), "the upstream to see the cancellation");
  });

  it("ends a followed stream at the client's grpc-timeout with DEADLINE_EXCEEDED, and cancels the upstream", async () => {
    const res = await fetch(`${gw.httpUrl}/v1/runs/deadlined/logs:watch?follow=true`, {
      headers: { authorization: auth, "grpc-timeout": "700m" },
    });
    expect(res.status).toBe(200); // messages went out before the deadline
    const body = lines(await res.text());
    expect(body[0]).toMatchObject({ result: { entries: [{ text: "deadlined line 0" }] } });
    expect(body.at(-1)).toMatchObject({ error: { code: 4 } });
    await waitFor(() => log.cancelled.includes("deadlined"), "the upstream to see the cancellation");
  });

  it("cancels the upstream when an SSE client disconnects", async () => {
    const abort = new AbortController();
    const res = await fetch(`${gw.httpUrl}/v1/runs/sse-followed/logs:watch?follow=true`, {
      headers: { authorization: auth, accept: "text/event-stream" },
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain("sse-followed line 0");
    abort.abort();
    await waitFor(() => log.cancelled.includes("sse-followed"), "the upstream to see the cancellation");
  });
});
