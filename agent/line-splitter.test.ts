import { describe, expect, it } from "vitest";
import { LineSplitter } from "./line-splitter.js";

describe("LineSplitter", () => {
  it("emits whole lines across chunks, strips CR and flushes the last partial line", () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.push(Buffer.from("one\r\ntw"));
    s.push(Buffer.from("o\n\nthree"));
    expect(lines).toEqual(["one", "two", ""]);
    s.end();
    expect(lines).toEqual(["one", "two", "", "three"]);
  });

  it("keeps multi-byte characters split between chunks whole", () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    const bytes = Buffer.from("héllo\n");
    s.push(bytes.subarray(0, 2));
    s.push(bytes.subarray(2));
    expect(lines).toEqual(["héllo"]);
  });

  it("cuts runaway lines into bounded pieces", () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l), 4);
    s.push(Buffer.from("abcdefghij"));
    expect(lines).toEqual(["abcd", "efgh"]);
    s.push(Buffer.from("\n"));
    expect(lines).toEqual(["abcd", "efgh", "ij"]);
  });
});
