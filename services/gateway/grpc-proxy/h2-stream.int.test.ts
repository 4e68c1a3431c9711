import { once } from "node:events";
import { constants, createServer, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import { Metadata, type StatusObject } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { Code } from "../../../mesh/errors.js";
import { UpstreamSessions } from "../routes/upstream-sessions.js";
import { callServerStreamH2 } from "./h2-stream.js";
import { frame } from "./h2-unary.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An HTTP/2 server answering every call with `respond`, and the streams it saw close. */
async function upstream(
  respond: (stream: ServerHttp2Stream) => void,
): Promise<{ address: string; resets: number[] }> {
  const resets: number[] = [];
  const server = createServer();
  server.on("stream", (stream) => {
    stream.on("error", () => {});
    stream.once("close", () => resets.push(stream.rstCode));
    stream.respond(
      { [constants.HTTP2_HEADER_STATUS]: 200, "content-type": "application/grpc" },
      { waitForTrailers: true },
    );
    respond(stream);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(() => new Promise((r) => server.close(() => r(undefined))));
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, resets };
}

/** Runs one call to the end: the messages it delivered and its status. */
async function run(address: string, max = 1024): Promise<{ messages: string[]; status: StatusObject }> {
  const sessions = new UpstreamSessions(() => [address]);
  cleanups.push(() => sessions.close());
  const call = callServerStreamH2(
    sessions,
    "agentmanager",
    "/x.Y/Z",
    Buffer.from("req"),
    new Metadata(),
    undefined,
    max,
  );
  const messages: string[] = [];
  call.on("data", (m: Buffer) => messages.push(m.toString()));
  const [status] = (await once(call, "status")) as [StatusObject];
  return { messages, status };
}

describe("server streams over the upstream sessions", () => {
  it("cuts messages out of frames split and joined across chunks, then reports the trailers' status", async () => {
    const up = await upstream((s) => {
      const bytes = Buffer.concat([
        frame(Buffer.from("one")),
        frame(Buffer.from("two")),
        frame(Buffer.from("three")),
      ]);
      // Chunks that cut through prefixes and payloads alike.
      s.write(bytes.subarray(0, 2));
      s.write(bytes.subarray(2, 11));
      s.write(bytes.subarray(11));
      s.end();
      s.on("wantTrailers", () => s.sendTrailers({ "grpc-status": "0" }));
    });
    const { messages, status } = await run(up.address);
    expect(messages).toEqual(["one", "two", "three"]);
    expect(status.code).toBe(Code.OK);
  });

  it("ends the call with RESOURCE_EXHAUSTED at a message over the limit, before its payload, and cancels upstream", async () => {
    const up = await upstream((s) => {
      s.write(frame(Buffer.from("fine")));
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(10_000, 1);
      s.write(prefix); // the declared length is enough to refuse it
    });
    const { messages, status } = await run(up.address, 1024);
    expect(messages).toEqual(["fine"]);
    expect(status.code).toBe(Code.RESOURCE_EXHAUSTED);
    await expect.poll(() => up.resets).toEqual([constants.NGHTTP2_CANCEL]);
  });

  it("refuses a compressed message the gateway did not ask for, and a stream ending inside a message", async () => {
    const compressed = await upstream((s) => {
      const f = frame(Buffer.from("zz"));
      f[0] = 1;
      s.write(f);
    });
    expect((await run(compressed.address)).status.code).toBe(Code.INTERNAL);
    const cut = await upstream((s) => {
      s.write(frame(Buffer.from("whole")).subarray(0, 7));
      s.end();
      s.on("wantTrailers", () => s.sendTrailers({ "grpc-status": "0" }));
    });
    const { status } = await run(cut.address);
    expect(status).toMatchObject({
      code: Code.INTERNAL,
      details: "upstream ended the stream inside a message",
    });
  });
});
