import { describe, expect, it } from "vitest";
import {
  type AgentProfile,
  compareLoad,
  isEligible,
  labelsMatch,
  parseLabelSelector,
  pickLeastLoaded,
} from "./matching.js";
import { PendingQueue } from "./pending-queue.js";

const agent = (over: Partial<AgentProfile> = {}): AgentProfile => ({
  id: "a1",
  labels: { pool: "x", gpu: "true" },
  os: "linux",
  region: "eu-west-1",
  tools: new Map([
    ["terraform", ["1.5.0", "1.6.0"]],
    ["node", []],
  ]),
  ...over,
});

describe("isEligible", () => {
  it("matches selectors on labels, os and region", () => {
    expect(
      isEligible(agent(), {
        selector: { pool: "x", os: "linux", region: "eu-west-1" },
        tools: [],
        rejectedBy: [],
      }),
    ).toBe(true);
    expect(isEligible(agent(), { selector: { pool: "y" }, tools: [], rejectedBy: [] })).toBe(false);
    expect(isEligible(agent(), { selector: { os: "windows" }, tools: [], rejectedBy: [] })).toBe(false);
    expect(isEligible(agent(), { selector: { missing: "" }, tools: [], rejectedBy: [] })).toBe(false);
  });

  it("requires every tool, at a listed version unless the agent installs any", () => {
    const needs = (tools: { name: string; version: string }[]) => ({ selector: {}, tools, rejectedBy: [] });
    expect(isEligible(agent(), needs([{ name: "terraform", version: "1.6.0" }]))).toBe(true);
    expect(isEligible(agent(), needs([{ name: "terraform", version: "0.12.0" }]))).toBe(false);
    expect(isEligible(agent(), needs([{ name: "node", version: "22.1.0" }]))).toBe(true);
    expect(isEligible(agent(), needs([{ name: "kubectl", version: "" }]))).toBe(false);
  });

  it("never offers a run to an agent that rejected it", () => {
    expect(isEligible(agent(), { selector: {}, tools: [], rejectedBy: ["a1"] })).toBe(false);
  });
});

describe("pickLeastLoaded", () => {
  it("prefers the lowest load ratio, then fewer runs, then the longest idle, and skips full agents", () => {
    const loads = [
      { id: "full", running: 2, capacity: 2, lastAssignedAt: 0 },
      { id: "half", running: 2, capacity: 4, lastAssignedAt: 0 },
      { id: "quarter", running: 2, capacity: 8, lastAssignedAt: 5 },
      { id: "quarter-idle", running: 2, capacity: 8, lastAssignedAt: 1 },
    ];
    expect(pickLeastLoaded(loads)?.id).toBe("quarter-idle");
    expect(pickLeastLoaded([loads[0]!])).toBeUndefined();
    expect(
      compareLoad(
        { id: "a", running: 1, capacity: 2, lastAssignedAt: 0 },
        { id: "b", running: 2, capacity: 4, lastAssignedAt: 0 },
      ),
    ).toBeLessThan(0);
  });
});

describe("label selectors", () => {
  it("parses key=value and key terms", () => {
    const terms = ["team=infra", "gpu"].map(parseLabelSelector);
    expect(terms).toEqual([{ key: "team", value: "infra" }, { key: "gpu" }]);
    expect(labelsMatch({ team: "infra", gpu: "" }, terms)).toBe(true);
    expect(labelsMatch({ team: "web", gpu: "" }, terms)).toBe(false);
  });
});

describe("PendingQueue", () => {
  const e = (id: string, priority: number, createdMs: number) => ({ id, priority, createdMs });

  it("orders by priority, then age, and puts a requeued run back at its place", () => {
    const q = new PendingQueue<ReturnType<typeof e>>();
    q.add(e("old-low", 0, 1));
    q.add(e("new-high", 5, 9));
    q.add(e("newer-low", 0, 5));
    q.add(e("requeued", 0, 3));
    expect([...q.ordered()].map((x) => x.id)).toEqual(["new-high", "old-low", "requeued", "newer-low"]);
    expect(q.remove("old-low")).toBe(true);
    expect(q.remove("old-low")).toBe(false);
    expect([...q.ordered(2)].map((x) => x.id)).toEqual(["new-high", "requeued"]);
    expect(q.size).toBe(3);
  });

  it("survives removal of the entry just yielded", () => {
    const q = new PendingQueue<ReturnType<typeof e>>();
    for (let i = 0; i < 5; i++) q.add(e(`r${i}`, 0, i));
    const taken: string[] = [];
    for (const x of q.ordered()) {
      if (x.createdMs % 2 === 0) {
        q.remove(x.id);
        taken.push(x.id);
      }
    }
    expect(taken).toEqual(["r0", "r2", "r4"]);
    expect([...q.ordered()].map((x) => x.id)).toEqual(["r1", "r3"]);
  });
});
