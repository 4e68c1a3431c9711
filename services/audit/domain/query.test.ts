import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { canReadProject, isPlatformAdmin } from "./authz.js";
import { parseFilter } from "./filter.js";
import { replayPayloads } from "./replay.js";

describe("filters", () => {
  it("splits full and short event type names and keeps only set fields", () => {
    const { filter, violations } = parseFilter({
      projectId: "p1",
      aggregateType: "",
      eventTypes: ["codex.events.v1.ProjectCreated", "MemberAdded", ""],
    });
    expect(violations).toEqual([]);
    expect(filter).toEqual({
      projectId: "p1",
      eventTypes: ["codex.events.v1.ProjectCreated"],
      eventNames: ["MemberAdded"],
    });
  });

  it("reports every problem at once", () => {
    const { violations } = parseFilter({
      projectId: "",
      aggregateType: "",
      aggregateId: "a1",
      eventTypes: Array.from({ length: 51 }, (_, i) => `T${i}`),
      startTime: timestampFromMs(2_000),
      endTime: timestampFromMs(1_000),
    });
    expect(violations.map((v) => v.field)).toEqual(["aggregate_id", "event_types", "end_time"]);
  });
});

describe("authorization", () => {
  it("lets owners and maintainers read their project, admins everything, API keys nothing", () => {
    const user = {
      type: "user" as const,
      id: "u",
      projectRoles: { p1: "OWNER", p2: "MEMBER_ROLE_MAINTAINER", p3: "VIEWER" },
    };
    expect(canReadProject(user, "p1")).toBe(true);
    expect(canReadProject(user, "p2")).toBe(true);
    expect(canReadProject(user, "p3")).toBe(false);
    expect(canReadProject(user, "p4")).toBe(false);
    expect(canReadProject(user, "")).toBe(false);
    expect(isPlatformAdmin({ type: "service", id: "scheduler" })).toBe(true);
    expect(isPlatformAdmin({ type: "user", id: "root", projectRoles: { "*": "admin" } })).toBe(true);
    const key = { type: "api_key" as const, id: "k", projectRoles: { p1: "OWNER", "*": "admin" } };
    expect(isPlatformAdmin(key)).toBe(false);
    expect(canReadProject(key, "p1")).toBe(false);
  });
});

describe("replay merge", () => {
  it("overwrites top-level fields in order and replaces maps and lists whole", () => {
    const state = replayPayloads([
      JSON.stringify({ a: 1, labels: { x: "1", y: "2" }, list: [1, 2] }),
      JSON.stringify({ b: 2, labels: { x: "3" } }),
      JSON.stringify({ a: 3, list: [] }),
      '"not an object"',
    ]);
    expect(state).toEqual({ a: 3, b: 2, labels: { x: "3" }, list: [] });
  });
});
