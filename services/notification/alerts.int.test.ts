import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../../gen/codex/agentmanager/v1/run_pb.js";
import { AgentLostSchema, RunCompletedSchema } from "../../gen/codex/events/v1/agent_events_pb.js";
import { WorkItemStateChangedSchema } from "../../gen/codex/events/v1/workitem_events_pb.js";
import { DeliveryOutcome } from "../../gen/codex/notification/v1/delivery_pb.js";
import { NotificationService } from "../../gen/codex/notification/v1/notification_service_pb.js";
import { AlertKind } from "../../gen/codex/notification/v1/subscription_pb.js";
import { WorkItemState } from "../../gen/codex/workitem/v1/work_item_pb.js";
import type { Principal } from "../../mesh/context.js";
import { encodeEnvelope } from "../../mesh/events/envelope.js";
import { publish } from "../../mesh/nats/publisher.js";
import { eventually } from "../../mesh/nats/testing.js";
import { startTestService, type TestService } from "../../test/support/harness.js";
import { notificationService } from "./service.js";
import { listFirings } from "./store/alerts.js";
import { envelopeOf, notificationTestEnv, publishEvent } from "./testing/events.js";
import { HttpReceiver, type ReceivedRequest } from "./testing/receivers.js";

const owner: Principal = { type: "user", id: "olga", projectRoles: { p1: "owner" } };
const admin: Principal = { type: "user", id: "root", projectRoles: { "*": "admin" } };

let svc: TestService<typeof notificationService.config & object>;
let hooks: HttpReceiver;

beforeAll(async () => {
  hooks = await new HttpReceiver().start();
  svc = await startTestService(notificationService, { env: notificationTestEnv() });
});

afterAll(async () => {
  await svc?.cleanup();
  await hooks?.stop();
});

const onPath = (path: string) => hooks.requests.filter((r) => r.path === path);
/** A resend after a lapsed lease (a loaded machine) repeats the delivery id; receivers drop it. */
const deliveryId = (r: ReceivedRequest) => String(r.headers["x-codex-delivery-id"]);

/** Occurrences a subscription's rule has counted. */
async function counted(subscriptionId: string): Promise<number> {
  const { rows } = await svc.running.host.pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM alert_occurrences WHERE subscription_id = $1",
    [subscriptionId],
  );
  return rows[0]?.n ?? 0;
}

/** The alerts a subscription's rule fired: one delivery each, created with the occurrence that fired it. */
async function alertsOf(subscriptionId: string): Promise<{ key: string; count: number }[]> {
  const { rows } = await svc.running.host.pool.query<{ alert: { key: string; count: number } }>(
    "SELECT alert FROM deliveries WHERE subscription_id = $1",
    [subscriptionId],
  );
  return rows.map((r) => r.alert);
}
const t0 = Date.now() - 30_000;

function itemChanged(workItemId: string, state: WorkItemState, atMs: number, runId = "") {
  return envelopeOf(
    WorkItemStateChangedSchema,
    { workItemId, newState: state, previousState: WorkItemState.IN_PROGRESS, projectId: "p1", runId },
    { aggregateType: "work_item", aggregateId: workItemId, projectId: "p1", occurredAtMs: atMs },
  );
}

function runFailed(workItemId: string, runId: string, atMs: number) {
  return envelopeOf(
    RunCompletedSchema,
    { runId, workItemId, status: RunState.FAILED },
    { aggregateType: "run", aggregateId: runId, projectId: "p1", occurredAtMs: atMs },
  );
}

describe("alert rules", () => {
  it("refuses event_types together with alert_rule", async () => {
    const client = svc.client(NotificationService, owner);
    await expect(
      client.createSubscription({
        subscription: {
          projectId: "p1",
          displayName: "bad",
          eventTypes: ["*"],
          alertRule: { kind: AlertKind.AGENT_LOST, threshold: 2, window: { seconds: 600n } },
          channel: { case: "webhook", value: { url: `${hooks.url}/bad` } },
        },
      }),
    ).rejects.toMatchObject({ code: 3 });
  });

  it("fires WORK_ITEM_FAILED_N_TIMES once at the threshold, per work item, counting each failure once", async () => {
    const client = svc.client(NotificationService, owner);
    const { subscription: sub } = await client.createSubscription({
      subscription: {
        projectId: "p1",
        displayName: "flapping work items",
        alertRule: { kind: AlertKind.WORK_ITEM_FAILED_N_TIMES, threshold: 3, window: { seconds: 600n } },
        channel: { case: "webhook", value: { url: `${hooks.url}/alert` } },
        template: "{{alert.kind}} {{alert.count}}/{{alert.threshold}} in {{alert.window}} for {{alert.key}}",
      },
    });
    const { js } = svc.running.host.nats;
    const second = itemChanged("w1", WorkItemState.FAILED, t0 + 2_000);
    const events = [
      itemChanged("w1", WorkItemState.FAILED, t0 + 1_000),
      itemChanged("w1", WorkItemState.DONE, t0 + 1_500), // not a failure
      itemChanged("w2", WorkItemState.FAILED, t0 + 1_600), // another key
      second,
      // w3: one run reported twice (run completed FAILED, then the item entering FAILED) counts once.
      runFailed("w3", "r1", t0 + 1_000),
      itemChanged("w3", WorkItemState.FAILED, t0 + 1_100, "r1"),
      runFailed("w3", "r2", t0 + 2_000),
    ];
    for (const e of events) await publishEvent(js, svc.prefix, e);
    // The same event again under another message id (an outbox re-publish after the dedupe window).
    await publish(js, `${svc.prefix}.events.work_item.WorkItemStateChanged`, encodeEnvelope(second), {
      msgId: `${second.id}-again`,
    });
    await new Promise((r) => setTimeout(r, 800));
    await eventually("w1 ×2, w2 ×1, w3 ×2 counted", async () => (await counted(sub!.id)) === 5);
    expect(await alertsOf(sub!.id)).toEqual([]); // w1 and w3 have 2 failures each

    const trip = [
      itemChanged("w1", WorkItemState.FAILED, t0 + 3_000),
      itemChanged("w3", WorkItemState.FAILED, t0 + 3_000, "r3"),
    ];
    const after = [
      itemChanged("w1", WorkItemState.FAILED, t0 + 4_000),
      itemChanged("w1", WorkItemState.FAILED, t0 + 5_000),
    ];
    for (const e of [...trip, ...after]) await publishEvent(js, svc.prefix, e);
    await eventually("all failures counted", async () => (await counted(sub!.id)) === 9);
    // The consumer handles several at once, in any order; each work item fires once, for its first
    // full window (3 failures, stamped at the third), and the cooldown (= window) keeps the rest silent.
    expect((await alertsOf(sub!.id)).map((a) => `${a.key} ${a.count}`).sort()).toEqual(["w1 3", "w3 3"]);
    for (const key of ["w1", "w3"]) {
      expect(await listFirings(svc.running.host.pool, sub!.id, key)).toMatchObject([
        { at: new Date(t0 + 3_000), count: 3 },
      ]);
    }
    await eventually("two alerts", () => new Set(onPath("/alert").map(deliveryId)).size === 2);
    const bodies = [...new Map(onPath("/alert").map((r) => [deliveryId(r), r.body])).values()].sort();
    expect(bodies).toEqual([
      "WORK_ITEM_FAILED_N_TIMES 3/3 in 10m for w1",
      "WORK_ITEM_FAILED_N_TIMES 3/3 in 10m for w3",
    ]);
    // The receiver answered; the worker records the outcome right after.
    const succeeded = async () =>
      (await client.listDeliveries({ subscriptionId: sub!.id, outcome: DeliveryOutcome.SUCCEEDED }))
        .deliveries;
    await eventually("both recorded as sent", async () => (await succeeded()).length >= 2);
    expect(await succeeded()).toHaveLength(2);
  });

  it("fires AGENT_LOST across projects for an all-project subscription, once within the cooldown", async () => {
    const client = svc.client(NotificationService, admin);
    const { subscription: fleet } = await client.createSubscription({
      subscription: {
        displayName: "fleet",
        alertRule: { kind: AlertKind.AGENT_LOST, threshold: 2, window: { seconds: 600n } },
        channel: { case: "webhook", value: { url: `${hooks.url}/fleet` } },
      },
    });
    const lost = (agentId: string, projectId: string, at: number) =>
      envelopeOf(
        AgentLostSchema,
        { agentId },
        { aggregateType: "agent", aggregateId: agentId, projectId, occurredAtMs: at },
      );
    for (const e of [lost("a1", "p1", t0), lost("a2", "p2", t0 + 1_000), lost("a3", "", t0 + 2_000)]) {
      await publishEvent(svc.running.host.nats.js, svc.prefix, e);
    }
    // Whatever order the consumer handles them in (it takes several at once): one firing, for the
    // first full window — a1 and a2 — stamped at a2 and reporting that window's count, 2.
    await eventually("all three losses counted", async () => (await counted(fleet!.id)) === 3);
    expect(await alertsOf(fleet!.id)).toEqual([
      { kind: "AGENT_LOST", count: 2, threshold: 2, window: "10m", key: "*" },
    ]);
    expect(await listFirings(svc.running.host.pool, fleet!.id, "*")).toMatchObject([
      { at: new Date(t0 + 1_000), count: 2 },
    ]);
    await eventually("fleet alert", () => onPath("/fleet").length >= 1);
    expect(new Set(onPath("/fleet").map(deliveryId)).size).toBe(1);
    const body = JSON.parse(onPath("/fleet")[0]!.body);
    expect(body.alert).toMatchObject({ kind: "AGENT_LOST", count: 2, threshold: 2, key: "*" });
  });
});
