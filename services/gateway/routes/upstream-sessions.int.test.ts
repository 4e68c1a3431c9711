import { once } from "node:events";
import { constants, createServer, type Http2Server } from "node:http2";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { UpstreamSessions } from "./upstream-sessions.js";

/**
 * An HTTP/2 upstream that answers every request after `holdMs` (never, by default), behind a TCP
 * relay that can be frozen: a frozen relay keeps the connection open but carries nothing, as a
 * replica that hangs or a network path that silently drops packets would.
 */
async function frozenUpstream(): Promise<{ address: string; freeze(): void; close(): Promise<void> }> {
  const h2: Http2Server = createServer();
  h2.on("stream", (stream) => {
    stream.on("error", () => {});
    // Answers nothing: the call stays in flight until something closes it.
  });
  h2.listen(0, "127.0.0.1");
  await once(h2, "listening");
  const h2Port = (h2.address() as net.AddressInfo).port;
  const sockets = new Set<net.Socket>();
  let frozen = false;
  const relay = net.createServer((client) => {
    const upstream = net.connect(h2Port, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.once("close", () => sockets.delete(s));
    }
    client.on("data", (d) => frozen || upstream.write(d));
    upstream.on("data", (d) => frozen || client.write(d));
    client.once("close", () => upstream.destroy());
    upstream.once("close", () => client.destroy());
  });
  relay.listen(0, "127.0.0.1");
  await once(relay, "listening");
  return {
    address: `127.0.0.1:${(relay.address() as net.AddressInfo).port}`,
    freeze: () => {
      frozen = true;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise((r) => relay.close(() => r(undefined))),
        new Promise((r) => h2.close(() => r(undefined))),
      ]);
    },
  };
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const headers = () => ({
  [constants.HTTP2_HEADER_METHOD]: "POST",
  [constants.HTTP2_HEADER_PATH]: "/codex.agentmanager.v1.AgentManagerService/GetRun",
  [constants.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
});

describe("upstream sessions keepalive", () => {
  it("closes a session whose pings go unanswered while a call is in flight, and dials a new one", async () => {
    const up = await frozenUpstream();
    cleanups.push(() => up.close());
    const sessions = new UpstreamSessions(() => [up.address], { keepaliveMs: 100, keepaliveTimeoutMs: 300 });
    cleanups.push(() => sessions.close());

    const first = sessions.request("agentmanager", headers());
    first.on("error", () => {});
    await once(first, "ready");
    up.freeze(); // the replica hangs: the call gets no answer, and neither do the pings
    const started = Date.now();
    await once(first, "close");
    const waited = Date.now() - started;
    // One ping interval plus the ping timeout, not the call's own (absent) deadline.
    expect(waited).toBeGreaterThanOrEqual(300);
    expect(waited).toBeLessThan(3_000);
    expect(first.session?.destroyed ?? true).toBe(true);

    // The dead session is forgotten: the next call goes out on a new connection.
    const second = sessions.request("agentmanager", headers());
    second.on("error", () => {});
    await once(second, "ready");
    expect(second.session).not.toBe(first.session);
    second.close(constants.NGHTTP2_CANCEL);
  });

  it("keeps a healthy session whose pings are answered", async () => {
    const up = await frozenUpstream();
    cleanups.push(() => up.close());
    const sessions = new UpstreamSessions(() => [up.address], { keepaliveMs: 100, keepaliveTimeoutMs: 300 });
    cleanups.push(() => sessions.close());
    const call = sessions.request("agentmanager", headers());
    call.on("error", () => {});
    await once(call, "ready");
    // Several ping rounds, each acknowledged: the call stays open.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(call.closed).toBe(false);
    expect(call.session?.destroyed).toBe(false);
    call.close(constants.NGHTTP2_CANCEL);
  });
});
