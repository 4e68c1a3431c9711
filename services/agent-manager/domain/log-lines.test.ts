import { describe, expect, it } from "vitest";
import {
  appendChunks,
  EMPTY_CURSOR,
  flushPartials,
  MAX_LINE_BYTES,
  type RawChunk,
  redact,
  splitUtf8,
} from "./log-lines.js";

const enc = new TextEncoder();
const chunk = (seq: number, text: string | Uint8Array, stream = 1, step?: number): RawChunk => ({
  seq: BigInt(seq),
  stream,
  step,
  data: typeof text === "string" ? enc.encode(text) : text,
  timeMs: 1_000 + seq,
});

describe("appendChunks", () => {
  it("splits chunks into lines with dense offsets and carries unfinished lines per stream and step", () => {
    const a = appendChunks(EMPTY_CURSOR, [chunk(1, "one\ntw"), chunk(2, "err", 2), chunk(3, "o\r\nthree")]);
    expect(a.lines.map((l) => [l.offset, l.stream, l.text])).toEqual([
      [0n, 1, "one"],
      [1n, 1, "two"],
    ]);
    expect(a.cursor.lastSeq).toBe(3n);
    const b = appendChunks(a.cursor, [chunk(4, "or\n", 2)]);
    expect(b.lines.map((l) => [l.offset, l.text])).toEqual([[2n, "error"]]);
    const end = flushPartials(b.cursor);
    expect(end.lines.map((l) => [l.offset, l.text])).toEqual([[3n, "three"]]);
    expect(end.cursor.partials).toEqual({});
  });

  it("ignores resent chunks and sorts a batch by seq", () => {
    const a = appendChunks(EMPTY_CURSOR, [chunk(2, "b\n"), chunk(1, "a\n")]);
    expect(a.lines.map((l) => l.text)).toEqual(["a", "b"]);
    const again = appendChunks(a.cursor, [chunk(1, "a\n"), chunk(2, "b\n"), chunk(3, "c\n")]);
    expect(again.lines.map((l) => [l.offset, l.text])).toEqual([[2n, "c"]]);
  });

  it("keeps a multi-byte character split across chunks and replaces invalid bytes", () => {
    const euro = enc.encode("€\n");
    const a = appendChunks(EMPTY_CURSOR, [chunk(1, euro.subarray(0, 1)), chunk(2, euro.subarray(1))]);
    expect(a.lines.map((l) => l.text)).toEqual(["€"]);
    const bad = appendChunks(EMPTY_CURSOR, [chunk(1, new Uint8Array([0x61, 0xff, 0x0a]))]);
    expect(bad.lines[0]?.text).toBe("a\uFFFD");
  });

  it("splits lines longer than 16 KiB and bounds unfinished lines", () => {
    const long = "x".repeat(MAX_LINE_BYTES * 2 + 10);
    const a = appendChunks(EMPTY_CURSOR, [chunk(1, `${long}\n`)]);
    expect(a.lines.map((l) => l.text.length)).toEqual([MAX_LINE_BYTES, MAX_LINE_BYTES, 10]);
    const open = appendChunks(EMPTY_CURSOR, [chunk(1, long)]);
    expect(open.lines).toHaveLength(2);
    expect(Buffer.from(open.cursor.partials["1/"]?.data ?? "", "base64").length).toBe(10);
  });

  it("redacts secrets of at least four characters", () => {
    const a = appendChunks(EMPTY_CURSOR, [chunk(1, "key=s3cr3t id=ab\n")], ["s3cr3t", "ab"]);
    expect(a.lines[0]?.text).toBe("key=[REDACTED] id=ab");
    expect(redact("no secret here", ["hunter2"])).toBe("no secret here");
  });

  it("never cuts inside a character", () => {
    const pieces = splitUtf8("é".repeat(10), 5);
    expect(pieces).toEqual(["éé", "éé", "éé", "éé", "éé"]);
  });
});
