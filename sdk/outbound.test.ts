import { describe, expect, it } from "vitest";
import type { ConnectRequest } from "../gen/codex/agentmanager/v1/connect_pb.js";
import { Outbound } from "./outbound.js";

const hello = { agentId: "a", sessionToken: "s", resumeRuns: [] };

/** Pulls the next `n` messages the stream writer would send. */
async function take(it: AsyncIterator<ConnectRequest>, n: number): Promise<ConnectRequest[]> {
  const out: ConnectRequest[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

function logs(runId: string, bytes = 10) {
  return { runId, logBytes: bytes, payload: { case: "logs" as const, value: { runId, fencingToken: 1n } } };
}

describe("Outbound", () => {
  it("sends only the hello until the session is welcomed", async () => {
    const ob = new Outbound();
    ob.enqueue(logs("r1"));
    const it = ob.open(hello)[Symbol.asyncIterator]();
    const [first] = await take(it, 1);
    expect(first?.message.case).toBe("hello");
    expect(first?.messageSeq).toBe(1n);
    const next = it.next();
    const raced = await Promise.race([next, new Promise((r) => setTimeout(() => r("waiting"), 20))]);
    expect(raced).toBe("waiting");
    ob.markWelcomed();
    expect((await next).value?.message.case).toBe("logs");
  });

  it("keeps only the latest heartbeat and serves it before queued messages", async () => {
    const ob = new Outbound();
    const it = ob.open(hello)[Symbol.asyncIterator]();
    await take(it, 1);
    ob.enqueue(logs("r1"));
    ob.enqueue(logs("r2"));
    for (let i = 1; i <= 5; i++) ob.offerHeartbeat({ runs: [{ runId: `beat-${i}`, fencingToken: 1n }] });
    ob.markWelcomed();
    const [a, b, c] = await take(it, 3);
    expect(a?.message.case).toBe("heartbeat");
    const beat = a?.message.case === "heartbeat" ? a.message.value : undefined;
    expect(beat?.runs[0]?.runId).toBe("beat-5");
    expect(beat?.seq).toBe(1n);
    expect([b?.message.case, c?.message.case]).toEqual(["logs", "logs"]);
    expect([a?.messageSeq, b?.messageSeq, c?.messageSeq]).toEqual([2n, 3n, 4n]);
    expect(ob.heartbeatPending).toBe(false);
  });

  it("resends unacknowledged messages, renumbered, on the next stream", async () => {
    const ob = new Outbound();
    let acked = 0;
    ob.enqueue({ ...logs("r1"), onAcked: () => acked++ });
    ob.enqueue(logs("r2"));
    ob.enqueue(logs("r3"));
    let it = ob.open(hello)[Symbol.asyncIterator]();
    ob.markWelcomed();
    const sent = await take(it, 4);
    expect(sent.map((m) => m.messageSeq)).toEqual([1n, 2n, 3n, 4n]);
    ob.ack(2n);
    expect(acked).toBe(1);
    expect(ob.backlog).toBe(2);
    expect(ob.logBytes).toBe(20);

    it = ob.open(hello)[Symbol.asyncIterator]();
    ob.markWelcomed();
    const resent = await take(it, 3);
    expect(resent.map((m) => [m.messageSeq, m.message.case])).toEqual([
      [1n, "hello"],
      [2n, "logs"],
      [3n, "logs"],
    ]);
    expect(resent.map((m) => (m.message.value as { runId?: string }).runId)).toEqual([undefined, "r2", "r3"]);
  });

  it("drops every message of a run whose lease is lost", async () => {
    const ob = new Outbound();
    ob.enqueue(logs("r1"));
    ob.enqueue(logs("r2"));
    ob.enqueue(logs("r1"));
    ob.dropRun("r1");
    expect(ob.backlog).toBe(1);
    expect(ob.logBytes).toBe(10);
    const flushed = ob.whenFlushed();
    const it = ob.open(hello)[Symbol.asyncIterator]();
    ob.markWelcomed();
    await take(it, 2);
    ob.ack(2n);
    await flushed;
    expect(ob.backlog).toBe(0);
  });

  it("ends the writer on endStream and half-closes when drained", async () => {
    const ob = new Outbound();
    let it = ob.open(hello)[Symbol.asyncIterator]();
    await take(it, 1);
    const pending = it.next();
    ob.endStream();
    expect((await pending).done).toBe(true);

    it = ob.open(hello)[Symbol.asyncIterator]();
    ob.markWelcomed();
    ob.enqueue(logs("r1"));
    ob.closeWhenDrained();
    const rest = await take(it, 5);
    expect(rest.map((m) => m.message.case)).toEqual(["hello", "logs"]);
  });
});
