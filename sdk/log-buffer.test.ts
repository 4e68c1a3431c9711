import { describe, expect, it } from "vitest";
import { LogStream } from "../gen/codex/agentmanager/v1/logs_pb.js";
import { MAX_CHUNK_BYTES, RunLogBuffer } from "./log-buffer.js";

const text = (d: Uint8Array | undefined) => Buffer.from(d ?? []).toString("utf8");

describe("RunLogBuffer", () => {
  it("merges consecutive lines of one stream and step into one chunk, newline-terminated", () => {
    const b = new RunLogBuffer(1n, 1 << 20);
    b.append("stdout", "a", 0);
    b.append("stdout", "b\n", 0);
    b.append("stderr", "c", 0);
    b.append("stderr", "d", 1);
    const chunks = b.take();
    expect(chunks.map((c) => [c.stream, c.stepIndex, text(c.data)])).toEqual([
      [LogStream.STDOUT, 0, "a\nb\n"],
      [LogStream.STDERR, 0, "c\n"],
      [LogStream.STDERR, 1, "d\n"],
    ]);
    expect(b.bufferedBytes).toBe(0);
    expect(b.take()).toEqual([]);
  });

  it("numbers chunks above anything an earlier lease holder could have sent", () => {
    const first = new RunLogBuffer(1n, 1 << 20);
    first.append("stdout", "x");
    const second = new RunLogBuffer(2n, 1 << 20);
    second.append("stdout", "y");
    second.append("stderr", "z");
    const [a] = first.take();
    const [b, c] = second.take();
    expect(a?.seq).toBe((1n << 32n) + 1n);
    expect(b?.seq).toBe((2n << 32n) + 1n);
    expect(c?.seq).toBe((2n << 32n) + 2n);
  });

  it("splits output into chunks of at most 64 KiB and batches of the requested size", () => {
    const b = new RunLogBuffer(1n, 1 << 22);
    b.append("stdout", "x".repeat(MAX_CHUNK_BYTES * 2 + 10));
    const all = b.take(MAX_CHUNK_BYTES);
    expect(all).toHaveLength(1);
    const rest = b.take();
    expect([...all, ...rest].map((c) => c.data?.length)).toEqual([MAX_CHUNK_BYTES, MAX_CHUNK_BYTES, 11]);
  });

  it("drops lines past its bound and says so at the head of the next batch", () => {
    const b = new RunLogBuffer(1n, 10);
    expect(b.append("stdout", "12345678")).toBe(true);
    expect(b.append("stdout", "overflow")).toBe(false);
    expect(b.append("stdout", "again")).toBe(false);
    const chunks = b.take();
    expect(chunks[0]?.stream).toBe(LogStream.SYSTEM);
    expect(text(chunks[0]?.data)).toContain("dropped 2 line(s), 15 bytes");
    expect(text(chunks[1]?.data)).toBe("12345678\n");
  });
});
