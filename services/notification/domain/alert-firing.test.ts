import { describe, expect, it } from "vitest";
import { decideAlert, type Trip, tripsOf } from "./alert-firing.js";
import type { AlertThresholds } from "./alert-rules.js";

const S = 1_000;
const M = 60 * S;

/** What store/alerts.ts does per occurrence, in memory: the key's firings after `order`. */
function replay(rule: AlertThresholds, order: readonly number[]): { fired: Trip[]; stamps: number[] } {
  const occurrences: number[] = [];
  let stamps: number[] = [];
  const fired: Trip[] = [];
  for (const t of order) {
    occurrences.push(t);
    const d = decideAlert(rule, occurrences, stamps, t);
    for (const r of d.restamps) stamps = stamps.map((s) => (s === r.fromMs ? r.toMs : s));
    if (d.fire) {
      fired.push(d.fire);
      stamps.push(d.fire.atMs);
    }
  }
  return { fired, stamps: stamps.sort((a, b) => a - b) };
}

function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

/** Deterministic shuffles (mulberry32), so a failure names a reproducible order. */
function shuffled<T>(xs: readonly T[], seed: number): T[] {
  let a = seed;
  const rnd = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe("trips", () => {
  const rule = { threshold: 2, windowMs: 10 * M };

  it("counts a window as (end − window, end], every occurrence at its end included", () => {
    expect(tripsOf(rule, [0, 10 * M], 10 * M)).toEqual([]); // exactly a window apart
    expect(tripsOf(rule, [1, 10 * M], 10 * M)).toEqual([{ atMs: 10 * M, count: 2 }]);
    expect(tripsOf({ threshold: 3, windowMs: M }, [5, 5, 5], 5)).toEqual([{ atMs: 5, count: 3 }]);
  });

  it("finds windows a late occurrence completes with occurrences that happened after it", () => {
    // Processing 1 s after 2 s had been processed: the old rule counted (−10m, 1s] = 1 and missed it.
    expect(tripsOf(rule, [2 * S, 1 * S], 1 * S)).toEqual([{ atMs: 2 * S, count: 2 }]);
    expect(tripsOf(rule, [0, 5 * M, 12 * M], 5 * M)).toEqual([
      { atMs: 5 * M, count: 2 },
      { atMs: 12 * M, count: 2 },
    ]);
    expect(tripsOf(rule, [0, 5 * M, 12 * M], 12 * M)).toEqual([{ atMs: 12 * M, count: 2 }]);
  });
});

describe("firing decisions", () => {
  const rule = { threshold: 2, windowMs: 10 * M, cooldownMs: 10 * M };

  it("fires at the first uncovered trip, moves a later stamp back, and is silent otherwise", () => {
    expect(decideAlert(rule, [0, S], [], S)).toEqual({ fire: { atMs: S, count: 2 }, restamps: [] });
    expect(decideAlert(rule, [0, S, 2 * S], [S], 2 * S)).toEqual({ fire: undefined, restamps: [] });
    expect(decideAlert(rule, [0, S, 2 * S], [2 * S], 0)).toEqual({
      fire: undefined,
      restamps: [{ fromMs: 2 * S, toMs: S }],
    });
    // Covered on both sides: moving the later stamp back would put two firings within a cooldown.
    expect(decideAlert(rule, [11 * M, 12 * M, 13 * M], [3 * M, 13 * M], 11 * M).restamps).toEqual([]);
    expect(decideAlert(rule, [0, 20 * M, 21 * M], [S], 20 * M).fire).toEqual({ atMs: 21 * M, count: 2 });
  });

  it("fires once per trip with a zero cooldown", () => {
    const zero = { ...rule, cooldownMs: 0 };
    expect(decideAlert(zero, [0, S, 2 * S], [S], 2 * S).fire).toEqual({ atMs: 2 * S, count: 3 });
    expect(decideAlert(zero, [0, S, 2 * S], [S, 2 * S], 0).fire).toBeUndefined();
  });
});

describe("order independence", () => {
  it("fires AGENT_LOST (2 in 10m) once, at the second loss, with count 2, in all 6 orders", () => {
    const rule = { threshold: 2, windowMs: 10 * M, cooldownMs: 10 * M };
    for (const order of permutations([0, S, 2 * S])) {
      const r = replay(rule, order);
      expect(
        r.fired.map((f) => f.count),
        `order ${order}`,
      ).toEqual([2]);
      expect(r.stamps, `order ${order}`).toEqual([S]);
    }
  });

  it("fires a burst once, at its threshold-th occurrence, with count = threshold, in all 720 orders", () => {
    const rule = { threshold: 3, windowMs: 5 * M, cooldownMs: 30 * M };
    const burst = [0, 1 * M, 7 * M, 8 * M, 9 * M, 10 * M]; // first full window ends at 9m
    for (const order of permutations(burst)) {
      const r = replay(rule, order);
      expect(
        r.fired.map((f) => f.count),
        `order ${order}`,
      ).toEqual([3]);
      expect(r.stamps, `order ${order}`).toEqual([9 * M]);
    }
  });

  it("decides bursts at least max(window, cooldown) apart alone, in every order", () => {
    const rule = { threshold: 2, windowMs: 10 * M, cooldownMs: 15 * M };
    const occurrences = [0, 4 * M, 6 * M, 30 * M, 31 * M, 50 * M, 58 * M];
    const expected = replay(rule, occurrences).stamps;
    expect(expected).toEqual([4 * M, 31 * M, 58 * M]);
    for (const order of permutations(occurrences)) {
      expect(replay(rule, order).stamps, `order ${order}`).toEqual(expected);
    }
  });

  it("never fires twice within a cooldown, nor more often than event-time order, in any order", () => {
    for (let seed = 1; seed <= 400; seed++) {
      const rule = {
        threshold: 1 + (seed % 4),
        windowMs: (1 + (seed % 7)) * M,
        cooldownMs: (seed % 9) * M,
      };
      const times = shuffled(
        Array.from({ length: 14 }, (_, i) => (i * 7919 * seed) % (40 * M)),
        seed,
      ).map((t) => Math.floor(t / S) * S);
      const inTimeOrder = replay(
        rule,
        [...times].sort((a, b) => a - b),
      );
      const r = replay(rule, times);
      for (let i = 1; i < r.stamps.length; i++) {
        const gap = (r.stamps[i] as number) - (r.stamps[i - 1] as number);
        expect(gap, `seed ${seed}`).toBeGreaterThanOrEqual(Math.max(rule.cooldownMs, 1));
      }
      expect(r.fired.length, `seed ${seed}`).toBe(r.stamps.length);
      expect(r.fired.length, `seed ${seed}`).toBeLessThanOrEqual(inTimeOrder.fired.length);
      expect(r.fired.length > 0, `seed ${seed}`).toBe(inTimeOrder.fired.length > 0);
    }
  });
});
