import { describe, expect, it } from "vitest";
import { AlertKind } from "../../../gen/codex/notification/v1/subscription_pb.js";
import { type AlertEvent, countedTypes, formatDuration, occurrenceOf } from "./alert-rules.js";

const ev = (type: string, payload: Record<string, unknown>, over: Partial<AlertEvent> = {}): AlertEvent => ({
  id: "e1",
  type: `codex.events.v1.${type}`,
  projectId: "p1",
  aggregateId: "w1",
  payload,
  ...over,
});
const sub = { id: "s1", projectId: "p1" };

describe("alert occurrences", () => {
  it("counts work items entering FAILED and failed runs, once per run", () => {
    const k = AlertKind.WORK_ITEM_FAILED_N_TIMES;
    expect(occurrenceOf(k, sub, ev("WorkItemStateChanged", { new_state: "WORK_ITEM_STATE_FAILED" }))).toEqual(
      {
        key: "w1",
        occurrenceId: "e1",
      },
    );
    expect(
      occurrenceOf(k, sub, ev("WorkItemStateChanged", { new_state: "WORK_ITEM_STATE_DONE" })),
    ).toBeUndefined();
    const item = ev("WorkItemStateChanged", {
      work_item_id: "w2",
      new_state: "WORK_ITEM_STATE_FAILED",
      run_id: "r1",
    });
    const run = ev(
      "RunCompleted",
      { work_item_id: "w2", status: "RUN_STATE_FAILED", run_id: "r1" },
      { id: "e2" },
    );
    expect(occurrenceOf(k, sub, item)).toEqual(occurrenceOf(k, sub, run));
  });

  it("keys agent losses by project, or '*' for all-project subscriptions", () => {
    expect(occurrenceOf(AlertKind.AGENT_LOST, sub, ev("AgentLost", {}))?.key).toBe("p1");
    expect(occurrenceOf(AlertKind.AGENT_LOST, { id: "s", projectId: "" }, ev("AgentLost", {}))?.key).toBe(
      "*",
    );
    expect(occurrenceOf(AlertKind.AGENT_LOST, sub, ev("AgentRegistered", {}))).toBeUndefined();
  });

  it("ignores dead letters of the alert subscription itself", () => {
    const k = AlertKind.DELIVERIES_DEAD_LETTERED;
    expect(occurrenceOf(k, sub, ev("NotificationDeadLettered", { subscription_id: "s1" }))).toBeUndefined();
    expect(occurrenceOf(k, sub, ev("NotificationDeadLettered", { subscription_id: "s9" }))?.key).toBe("s9");
  });
});

describe("counted types", () => {
  it("name every type a kind may count, and only those", () => {
    // A payload every kind would count, so only the type decides.
    const payload = {
      new_state: "WORK_ITEM_STATE_FAILED",
      status: "RUN_STATE_FAILED",
      work_item_id: "w1",
      project_id: "p1",
      subscription_id: "s9",
    };
    const kinds = Object.values(AlertKind).filter((k): k is AlertKind => typeof k === "number");
    const types = [...new Set(kinds.flatMap((k) => countedTypes(k)))];
    expect(types.length).toBeGreaterThanOrEqual(6);
    for (const kind of kinds) {
      for (const type of [...types, "codex.events.v1.RunStarted", "codex.events.v1.ProjectCreated"]) {
        const counted = occurrenceOf(kind, sub, { ...ev("x", payload), type }) !== undefined;
        expect({ kind, type, counted }).toEqual({ kind, type, counted: countedTypes(kind).includes(type) });
      }
    }
  });
});

describe("alert rendering", () => {
  it("formats windows", () => {
    expect([60_000, 90_000, 7_200_000, 86_400_000, 1_500].map(formatDuration)).toEqual([
      "1m",
      "90s",
      "2h",
      "1d",
      "1500ms",
    ]);
  });
});
