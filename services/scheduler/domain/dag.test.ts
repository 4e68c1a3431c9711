import { describe, expect, it } from "vitest";
import { findCycle } from "./dag.js";

const graph = (edges: Record<string, string[]>) => (id: string) => edges[id] ?? [];

describe("findCycle", () => {
  it("accepts a diamond: D depends on B and C, both on A", () => {
    const g = graph({ B: ["A"], C: ["A"] });
    expect(findCycle("D", ["B", "C"], g)).toBeUndefined();
  });

  it("names a two-node cycle starting and ending with the scheduled item", () => {
    expect(findCycle("A", ["B"], graph({ B: ["A"] }))).toEqual(["A", "B", "A"]);
  });

  it("names the path of a longer cycle through a diamond", () => {
    const g = graph({ B: ["C", "X"], C: ["D"], X: ["D"], D: ["A"] });
    const cycle = findCycle("A", ["B"], g);
    expect(cycle?.[0]).toBe("A");
    expect(cycle?.at(-1)).toBe("A");
    expect(cycle?.length).toBe(5);
    // every consecutive pair is an edge
    for (let i = 0; i + 1 < (cycle?.length ?? 0) - 1; i++) {
      const from = cycle?.[i + 1] as string;
      const to = cycle?.[i + 2] as string;
      expect(g(from)).toContain(to);
    }
  });

  it("refuses a self-dependency", () => {
    expect(findCycle("A", ["A"], graph({}))).toEqual(["A", "A"]);
  });

  it("handles a 10,000-long chain without recursion", () => {
    const edges: Record<string, string[]> = {};
    for (let i = 0; i < 10_000; i++) edges[`n${i}`] = [`n${i + 1}`];
    expect(findCycle("start", ["n0"], graph(edges))).toBeUndefined();
    edges.n9999 = ["start"];
    expect(findCycle("start", ["n0"], graph(edges))?.length).toBe(10_002);
  });
});
