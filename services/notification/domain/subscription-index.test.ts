import { describe, expect, it } from "vitest";
import { AlertKind } from "../../../gen/codex/notification/v1/subscription_pb.js";
import { type IndexedSubscription, SubscriptionIndex } from "./subscription-index.js";

const T = (n: string) => `codex.events.v1.${n}`;
const sub = (
  seq: number,
  projectId: string,
  eventTypes: string[],
  kind?: AlertKind,
): IndexedSubscription => ({
  seq: BigInt(seq),
  id: `s${seq}`,
  projectId,
  eventTypes,
  alertRule: kind === undefined ? null : { kind, threshold: 2, windowMs: 60_000, cooldownMs: 60_000 },
});
const ids = (subs: readonly IndexedSubscription[]) => subs.map((s) => s.id);

describe("subscription index", () => {
  const index = new SubscriptionIndex(7n, [
    sub(5, "p1", ["Run*"]),
    sub(2, "", ["RunCompleted"]),
    sub(3, "p2", ["*"]),
    sub(4, "p1", ["*"], AlertKind.WORK_ITEM_FAILED_N_TIMES),
    sub(1, "", ["*"], AlertKind.AGENT_LOST),
    sub(6, "p1", ["NotificationDelivered", "*"]),
  ]);

  it("finds plain subscriptions by project and pattern, in subscription order", () => {
    expect(ids(index.candidates("p1", T("RunCompleted")).plain)).toEqual(["s2", "s5", "s6"]);
    expect(ids(index.candidates("p2", T("RunCompleted")).plain)).toEqual(["s2", "s3"]);
    expect(ids(index.candidates("p3", T("RunStarted")).plain)).toEqual([]);
    // Own events: only by exact name, and NotificationDelivered never.
    expect(ids(index.candidates("p1", T("NotificationDelivered")).plain)).toEqual([]);
  });

  it("finds alert subscriptions whose kind counts the type, whatever their patterns", () => {
    expect(ids(index.candidates("p1", T("RunCompleted")).alerts)).toEqual(["s4"]);
    expect(ids(index.candidates("p2", T("RunCompleted")).alerts)).toEqual([]);
    expect(ids(index.candidates("p2", T("AgentLost")).alerts)).toEqual(["s1"]);
    expect(ids(index.candidates("p1", T("RunStarted")).alerts)).toEqual([]);
  });

  it("answers the same from its memo, and nothing when empty", () => {
    const first = index.candidates("p1", T("RunCompleted"));
    expect(index.candidates("p1", T("RunCompleted"))).toBe(first);
    const empty = new SubscriptionIndex(0n, []);
    expect(empty.candidates("p1", T("RunCompleted"))).toEqual({ plain: [], alerts: [] });
    expect(index.changeCount).toBe(7n);
  });
});
