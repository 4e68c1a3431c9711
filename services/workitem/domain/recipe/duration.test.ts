import { describe, expect, it } from "vitest";
import { formatDuration, parseTimeout } from "./duration.js";

const DAY = 24 * 60 * 60 * 1000;

describe("parseTimeout", () => {
  it.each([
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["1h0m1s", 3_601_000],
    ["90m", 5_400_000],
    [45, 45_000],
    [86_400, DAY],
  ] as const)("reads %j as %i ms", (input, ms) => {
    expect(parseTimeout(input, DAY)).toEqual({ ok: true, ms });
  });

  it.each([
    ["1.5h"],
    ["30"],
    ["30 s"],
    ["1m1h"],
    ["1d"],
    [""],
    ["h"],
    [-1],
    [0],
    ["0m"],
    [2.5],
    [null],
    [true],
  ] as const)("refuses %j", (input) => {
    expect(parseTimeout(input, DAY).ok).toBe(false);
  });

  it("refuses more than the maximum and says what the maximum is", () => {
    expect(parseTimeout("24h1s", DAY)).toEqual({ ok: false, reason: "must be at most 24h" });
    expect(parseTimeout(Number.MAX_SAFE_INTEGER, DAY).ok).toBe(false);
    expect(parseTimeout("999999h", DAY).ok).toBe(false);
  });
});

describe("formatDuration", () => {
  it("writes durations back in the accepted notation", () => {
    expect(formatDuration(5_400_000)).toBe("1h30m");
    expect(formatDuration(61_000)).toBe("1m1s");
    expect(formatDuration(0)).toBe("0s");
  });
});
