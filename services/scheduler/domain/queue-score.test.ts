import { describe, expect, it } from "vitest";
import { readyScore } from "./queue-score.js";

describe("readyScore", () => {
  it("orders by priority, then ready time", () => {
    const t = Date.parse("2026-06-01T00:00:00Z");
    const scores = [readyScore(5, t + 10), readyScore(5, t), readyScore(1000, t + 99), readyScore(-1000, t)];
    const order = [...scores].sort((a, b) => a - b);
    expect(order).toEqual([scores[2], scores[1], scores[0], scores[3]]);
  });

  it("stays an exact integer at the extremes", () => {
    const s = readyScore(-1000, Date.parse("2100-01-01T00:00:00Z"));
    expect(Number.isSafeInteger(s)).toBe(true);
    expect(readyScore(-1000, 1) - readyScore(-1000, 0)).toBe(1);
  });
});
