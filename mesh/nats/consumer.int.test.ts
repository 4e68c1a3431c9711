import { randomBytes } from "node:crypto";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connectNats } from "./connection.js";
import {
  type ConsumedMessage,
  DurableConsumer,
  type DurableConsumerOptions,
  PermanentError,
} from "./consumer.js";
import { DlqHeaders } from "./dead-letter.js";
import { publish } from "./publisher.js";
import { deleteStreams, ensureStreams } from "./streams.js";
import { subjectsFor } from "./subjects.js";
import { eventually, readStream } from "./testing.js";

const prefix = `t${randomBytes(5).toString("hex")}`;
const subjects = subjectsFor(prefix);
const enc = new TextEncoder();
const dec = new TextDecoder();
let nc: NatsConnection;
let jsm: JetStreamManager;
let js: JetStreamClient;
const running: DurableConsumer[] = [];
let durableSeq = 0;

beforeAll(async () => {
  nc = await connectNats({ servers: "nats://127.0.0.1:4222", name: "mesh-consumer-test" });
  jsm = await jetstreamManager(nc);
  js = jetstream(nc);
  await ensureStreams(jsm, prefix);
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
});

afterAll(async () => {
  await deleteStreams(jsm, prefix);
  await nc.close();
});

/** Each test gets its own aggregate type and durable, so tests never see each other's messages. */
function scenario(tag: string) {
  durableSeq++;
  const durable = `c${durableSeq}-${tag}`;
  const aggregate = `agg${durableSeq}`;
  return {
    durable,
    subject: (name: string) => subjects.event(aggregate, name),
    filter: `${prefix}.events.${aggregate}.>`,
    send: (name: string, body: string, msgId = `${durable}-${body}`) =>
      publish(js, subjects.event(aggregate, name), enc.encode(body), { msgId, headers: { "X-Test": body } }),
  };
}

async function startConsumer(
  s: ReturnType<typeof scenario>,
  handler: (m: ConsumedMessage) => Promise<void>,
  extra: Partial<DurableConsumerOptions> = {},
): Promise<DurableConsumer> {
  const c = new DurableConsumer({
    nc,
    stream: subjects.streams.events,
    durable: s.durable,
    filterSubjects: [s.filter],
    dlqSubject: subjects.dlq(s.durable),
    handler,
    retryBackoff: { initialMs: 20, maxMs: 100 },
    ...extra,
  });
  await c.start();
  running.push(c);
  return c;
}

async function deadLetters(durable: string) {
  const all = await readStream(jsm, subjects.streams.dlq);
  return all.filter((m) => m.subject === subjects.dlq(durable));
}

describe("DurableConsumer", () => {
  it("hands every message to the handler once, in order, and acks it", async () => {
    const s = scenario("ack");
    for (const body of ["a", "b", "c"]) await s.send("Happened", body);
    const seen: ConsumedMessage[] = [];
    const c = await startConsumer(s, async (m) => {
      seen.push(m);
    });
    await eventually("3 messages", () => seen.length === 3);
    expect(seen.map((m) => dec.decode(m.data))).toEqual(["a", "b", "c"]);
    expect(seen.map((m) => m.deliveryCount)).toEqual([1, 1, 1]);
    expect(seen[0]?.msgId).toBe(`${s.durable}-a`);
    expect(seen[0]?.headers["X-Test"]).toBe("a");
    expect(seen[0]?.subject).toBe(s.subject("Happened"));
    await eventually("lag 0", async () => (await c.pending()) === 0);
    const info = await jsm.consumers.info(subjects.streams.events, s.durable);
    expect(info.config.ack_policy).toBe("explicit");
    expect(info.config.deliver_policy).toBe("all");
    expect(info.config.max_deliver).toBe(5);
    expect(info.ack_floor.stream_seq).toBe(info.delivered.stream_seq);
  });

  it("redelivers a message whose handler failed, then acks it", async () => {
    const s = scenario("retry");
    await s.send("Happened", "flaky");
    const attempts: number[] = [];
    await startConsumer(s, async (m) => {
      attempts.push(m.deliveryCount);
      if (m.deliveryCount < 3) throw new Error("transient");
    });
    await eventually("third attempt", () => attempts.length === 3);
    expect(attempts).toEqual([1, 2, 3]);
    expect(await deadLetters(s.durable)).toHaveLength(0);
  });

  it("dead-letters after maxDeliver attempts with the original subject, headers and error", async () => {
    const s = scenario("dlq");
    const { seq } = await s.send("Happened", "poison");
    let attempts = 0;
    const errors: unknown[] = [];
    const c = await startConsumer(
      s,
      async () => {
        attempts++;
        throw new Error(`broken\nattempt ${attempts}`);
      },
      { maxDeliver: 3, onError: (err) => errors.push(err) },
    );
    await eventually("dead letter", async () => (await deadLetters(s.durable)).length === 1);
    const [dl] = await deadLetters(s.durable);
    expect(attempts).toBe(3);
    expect(errors).toHaveLength(3);
    expect(dec.decode(dl?.data)).toBe("poison");
    expect(dl?.header.get(DlqHeaders.subject)).toBe(s.subject("Happened"));
    expect(dl?.header.get(DlqHeaders.consumer)).toBe(s.durable);
    expect(dl?.header.get(DlqHeaders.error)).toBe("Error: broken attempt 3");
    expect(dl?.header.get(DlqHeaders.streamSeq)).toBe(String(seq));
    expect(dl?.header.get(DlqHeaders.deliveryCount)).toBe("3");
    expect(dl?.header.get(DlqHeaders.msgId)).toBe(`${s.durable}-poison`);
    expect(dl?.header.get("X-Test")).toBe("poison");
    // Terminated, not left pending: nothing more will be delivered.
    await eventually("lag 0", async () => (await c.pending()) === 0);
    await new Promise((r) => setTimeout(r, 200));
    expect(attempts).toBe(3);
  });

  it("dead-letters a PermanentError on the first attempt and keeps consuming", async () => {
    const s = scenario("perm");
    await s.send("Happened", "bad");
    await s.send("Happened", "good");
    const handled: string[] = [];
    await startConsumer(s, async (m) => {
      const body = dec.decode(m.data);
      if (body === "bad") throw new PermanentError("cannot decode");
      handled.push(body);
    });
    await eventually("good handled", () => handled.includes("good"));
    const dls = await deadLetters(s.durable);
    expect(dls).toHaveLength(1);
    expect(dls[0]?.header.get(DlqHeaders.deliveryCount)).toBe("1");
    expect(dls[0]?.header.get(DlqHeaders.error)).toBe("PermanentError: cannot decode");
  });

  it("runs up to `concurrency` handlers at once", async () => {
    const s = scenario("par");
    for (let i = 0; i < 12; i++) await s.send("Happened", `m${i}`);
    let active = 0;
    let peak = 0;
    let done = 0;
    await startConsumer(
      s,
      async () => {
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 30));
        active--;
        done++;
      },
      { concurrency: 4 },
    );
    await eventually("12 handled", () => done === 12);
    expect(peak).toBe(4);
  });

  it("receives several filter subjects (server-side on NATS >= 2.10, client-side on 2.9)", async () => {
    const s = scenario("multi");
    const other = `${prefix}.events.elsewhere.Happened`;
    await publish(js, other, enc.encode("skip"), { msgId: `${s.durable}-skip` });
    await s.send("Created", "one");
    await s.send("Deleted", "two");
    await s.send("Updated", "three");
    const seen: string[] = [];
    await startConsumer(s, async (m) => void seen.push(dec.decode(m.data)), {
      filterSubjects: [s.subject("Created"), s.subject("Updated")],
    });
    await eventually("two handled", () => seen.length === 2);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toEqual(["one", "three"]);
  });

  it("stop() waits for the in-flight handler and its ack, and hands back the rest", async () => {
    const s = scenario("stop");
    const { seq: slowSeq } = await s.send("Happened", "slow");
    for (const body of ["next1", "next2"]) await s.send("Happened", body);
    const finished: string[] = [];
    let entered = false;
    const c = await startConsumer(s, async (m) => {
      entered = true;
      await new Promise((r) => setTimeout(r, 300));
      finished.push(dec.decode(m.data));
    });
    await eventually("handler entered", () => entered);
    await c.stop();
    expect(c.state).toBe("STOPPED");
    expect(finished).toEqual(["slow"]);
    await eventually("ack of slow recorded", async () => {
      const info = await jsm.consumers.info(subjects.streams.events, s.durable);
      return info.ack_floor.stream_seq === slowSeq;
    });
    // A successor on the same durable gets exactly the messages that were not handled, each once,
    // after the hand-back delay (~6 s) rather than after ack_wait (30 s).
    const rest: string[] = [];
    const successor = await startConsumer(s, async (m) => void rest.push(dec.decode(m.data)));
    await eventually("rest handled", () => rest.length === 2, 15_000);
    expect(rest).toEqual(["next1", "next2"]);
    await eventually("lag 0", async () => (await successor.pending()) === 0);
  });
});

/** Blocks the event loop: nothing is read from any socket meanwhile. */
function busyWait(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // spin
  }
}

describe("DurableConsumer.stop() with a message in transit", () => {
  it("hands the message back, so a successor gets it long before ack_wait", async () => {
    const s = scenario("transit");
    const ackWaitMs = 60_000;
    const publisher = await connectNats({ servers: "nats://127.0.0.1:4222", name: "mesh-consumer-test-pub" });
    try {
      const seenByStopped: string[] = [];
      const c = await startConsumer(s, async (m) => void seenByStopped.push(dec.decode(m.data)), {
        ackWaitMs,
      });
      await eventually("a pull request waiting on the server", async () => {
        const info = await jsm.consumers.info(subjects.streams.events, s.durable);
        return info.num_waiting > 0;
      });
      // A core publish (the stream stores it; no ack to wait for) from another connection. nats.js
      // writes it from a microtask; awaiting one lets that run but no I/O callback. The busy wait
      // then gives the server time to store it and send it to our open pull request, while this
      // process cannot read it: stop() is called with the message in our socket, unread.
      publisher.publish(s.subject("Happened"), enc.encode("in transit"));
      await new Promise<void>((resolve) => queueMicrotask(resolve));
      busyWait(50);
      const stopped = c.stop();
      await stopped;
      const got: ConsumedMessage[] = [];
      await startConsumer(s, async (m) => void got.push(m), { ackWaitMs });
      // Handed back: redelivered after the hand-back delay (~6 s). Dropped: only after ack_wait (60 s).
      await eventually("the in-transit message at the successor", () => got.length === 1, 15_000);
      expect(dec.decode(got[0]?.data)).toBe("in transit");
      expect(seenByStopped).toEqual([]);
      // Delivered twice: it had really reached the stopping consumer, which handed it back.
      expect(got[0]?.deliveryCount).toBe(2);
    } finally {
      await publisher.close();
    }
  });
});

describe("DurableConsumer in batch mode", () => {
  it("hands messages over in batches, in delivery order, each once, and acks them all", async () => {
    const s = scenario("batch");
    for (let i = 0; i < 300; i++) await s.send("Happened", `m${i}`);
    const batches: string[][] = [];
    const c = await startConsumer(
      s,
      async () => {
        throw new Error("the per-message handler must not run while batches succeed");
      },
      {
        maxBatch: 100,
        batchHandler: async (msgs) => {
          batches.push(msgs.map((m) => dec.decode(m.data)));
          await new Promise((r) => setTimeout(r, 5));
        },
      },
    );
    await eventually("300 messages", () => batches.flat().length === 300);
    expect(batches.flat()).toEqual(Array.from({ length: 300 }, (_, i) => `m${i}`));
    expect(Math.max(...batches.map((b) => b.length))).toBeLessThanOrEqual(100);
    // Messages published before the start arrive together: far fewer batches than messages.
    expect(batches.length).toBeLessThan(30);
    await eventually("lag 0", async () => (await c.pending()) === 0);
  });

  it("falls back to the per-message handler when a batch fails: one retry or dead letter each", async () => {
    const s = scenario("batchfail");
    for (const body of ["ok1", "poison", "ok2"]) await s.send("Happened", body);
    const handled: string[] = [];
    let batchCalls = 0;
    const c = await startConsumer(
      s,
      async (m) => {
        const body = dec.decode(m.data);
        if (body === "poison") throw new PermanentError("cannot handle poison");
        handled.push(body);
      },
      {
        batchHandler: async (msgs) => {
          batchCalls += 1;
          if (msgs.some((m) => dec.decode(m.data) === "poison")) throw new Error("batch refused");
          handled.push(...msgs.map((m) => dec.decode(m.data)));
        },
      },
    );
    await eventually("poison dead-lettered", async () => (await deadLetters(s.durable)).length === 1);
    await eventually("lag 0", async () => (await c.pending()) === 0);
    expect(handled).toEqual(["ok1", "ok2"]);
    expect(batchCalls).toBeGreaterThanOrEqual(1);
  });

  it("stop() hands buffered messages back; a successor gets every message", async () => {
    const s = scenario("batchstop");
    for (let i = 0; i < 50; i++) await s.send("Happened", `m${i}`);
    const first: string[] = [];
    const c = await startConsumer(s, async () => {}, {
      maxBatch: 10,
      batchHandler: async (msgs) => {
        first.push(...msgs.map((m) => dec.decode(m.data)));
        await new Promise((r) => setTimeout(r, 50));
      },
    });
    await eventually("a first batch", () => first.length > 0);
    await c.stop();
    running.splice(running.indexOf(c), 1);
    const second: string[] = [];
    await startConsumer(s, async () => {}, {
      batchHandler: async (msgs) => {
        second.push(...msgs.map((m) => dec.decode(m.data)));
      },
    });
    await eventually("all 50 seen", () => new Set([...first, ...second]).size === 50, 20_000);
  }, 30_000);
});

describe("DurableConsumer batch linger", () => {
  it("gathers messages that trickle in within the linger into one batch, and never holds a full one", async () => {
    const s = scenario("linger");
    const batches: string[][] = [];
    await startConsumer(s, async () => {}, {
      maxBatch: 3,
      batchLingerMs: 400,
      batchHandler: async (msgs) => {
        batches.push(msgs.map((m) => dec.decode(m.data)));
      },
    });
    const t0 = Date.now();
    for (const body of ["a", "b", "c"]) {
      await s.send("Happened", body);
      await new Promise((r) => setTimeout(r, 30));
    }
    await eventually("the full batch", () => batches.length === 1);
    // Full at the third message: handed over then, not after the 400 ms linger.
    expect(Date.now() - t0).toBeLessThan(380);
    expect(batches[0]).toEqual(["a", "b", "c"]);
    await s.send("Happened", "d");
    await s.send("Happened", "e");
    await eventually("the lingering batch", () => batches.length === 2);
    expect(batches[1]).toEqual(["d", "e"]);
  });
});

describe("DurableConsumer batch with messages handed back", () => {
  it("acks what the batch handled and passes only the handed-back messages to the per-message handler", async () => {
    const s = scenario("handback");
    for (const body of ["ok1", "poison", "ok2"]) await s.send("Happened", body);
    const batched: string[] = [];
    const single: string[] = [];
    const c = await startConsumer(
      s,
      async (m) => {
        single.push(dec.decode(m.data));
        throw new PermanentError("cannot handle poison");
      },
      {
        batchHandler: async (msgs) => {
          const good = msgs.filter((m) => dec.decode(m.data) !== "poison");
          batched.push(...good.map((m) => dec.decode(m.data)));
          return msgs.filter((m) => !good.includes(m));
        },
      },
    );
    await eventually("poison dead-lettered", async () => (await deadLetters(s.durable)).length === 1);
    await eventually("lag 0", async () => (await c.pending()) === 0);
    expect(batched).toEqual(["ok1", "ok2"]);
    expect(single).toEqual(["poison"]);
  });
});
