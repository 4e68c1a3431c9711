import { describe, expect, it } from "vitest";
import { AckTracker } from "./ack-tracker.js";
import { OutboundQueue } from "./outbound-queue.js";

describe("AckTracker", () => {
  it("acknowledges cumulatively up to the first message still in progress", () => {
    const t = new AckTracker();
    for (const s of [1n, 2n, 3n, 4n]) t.received(s);
    t.done(1n);
    t.done(3n);
    expect(t.advance()).toBe(1n);
    expect(t.advance()).toBeUndefined();
    t.done(2n);
    expect(t.advance()).toBe(3n);
    t.done(4n);
    expect(t.watermark()).toBe(4n);
  });
});

describe("OutboundQueue", () => {
  it("delivers pushed items in order, then ends or fails after them", async () => {
    const q = new OutboundQueue<number>();
    q.push(1);
    setTimeout(() => {
      q.push(2);
      q.fail(new Error("replaced"));
      expect(q.push(3)).toBe(false);
    }, 5);
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const x of q) got.push(x);
      })(),
    ).rejects.toThrow("replaced");
    expect(got).toEqual([1, 2]);
    const done = new OutboundQueue<number>();
    done.end();
    const none: number[] = [];
    for await (const x of done) none.push(x);
    expect(none).toEqual([]);
  });
});
