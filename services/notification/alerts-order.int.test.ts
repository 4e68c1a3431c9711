import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentLostSchema } from "../../gen/codex/events/v1/agent_events_pb.js";
import type { EventEnvelope } from "../../gen/codex/events/v1/envelope_pb.js";
import { NotificationService } from "../../gen/codex/notification/v1/notification_service_pb.js";
import { AlertKind } from "../../gen/codex/notification/v1/subscription_pb.js";
import type { Principal } from "../../mesh/context.js";
import { encodeEnvelope } from "../../mesh/events/envelope.js";
import { publish } from "../../mesh/nats/publisher.js";
import { eventually } from "../../mesh/nats/testing.js";
import { startTestService, type TestService } from "../../test/support/harness.js";
import { notificationService } from "./service.js";
import { listFirings } from "./store/alerts.js";
import { envelopeOf, notificationTestEnv, publishEvent } from "./testing/events.js";
import { HttpReceiver } from "./testing/receivers.js";

/**
 * Alert rules decide the same whatever order the consumer handles occurrences in: events
 * published in event-time order, reversed, shuffled, or all at once (handled concurrently, and
 * one of them published twice) fire one alert, stamped at the same occurrence, with the same count.
 */

const admin: Principal = { type: "user", id: "root", projectRoles: { "*": "admin" } };
const M = 60_000;

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

const t0 = Date.now() - 30 * M;
/** Five agent losses a minute apart; 3 within 10 minutes first hold at the third (t0 + 2m). */
const OFFSETS = [0, M, 2 * M, 3 * M, 4 * M];

async function recorded(subscriptionId: string): Promise<number> {
  const { rows } = await svc.running.host.pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM alert_occurrences WHERE subscription_id = $1",
    [subscriptionId],
  );
  return rows[0]?.n ?? 0;
}

async function scenario(name: string, order: number[], mode: "one by one" | "all at once") {
  const { subscription } = await svc.client(NotificationService, admin).createSubscription({
    subscription: {
      projectId: name,
      displayName: `agents lost (${name})`,
      alertRule: { kind: AlertKind.AGENT_LOST, threshold: 3, window: { seconds: 600n } },
      channel: { case: "webhook", value: { url: `${hooks.url}/${name}` } },
    },
  });
  const sub = subscription!.id;
  const losses = OFFSETS.map((ms, i) =>
    envelopeOf(
      AgentLostSchema,
      { agentId: `a${i}` },
      { aggregateType: "agent", aggregateId: `a${i}`, projectId: name, occurredAtMs: t0 + ms },
    ),
  );
  const { js } = svc.running.host.nats;
  const inOrder = order.map((i) => losses[i] as EventEnvelope);
  if (mode === "one by one") {
    // Each handled before the next is published: the consumer sees exactly this order.
    for (const [n, e] of inOrder.entries()) {
      await publishEvent(js, svc.prefix, e);
      await eventually(`${name}: occurrence ${n + 1} recorded`, async () => (await recorded(sub)) === n + 1);
    }
  } else {
    await Promise.all(inOrder.map((e) => publishEvent(js, svc.prefix, e)));
    // The same event again under another message id (an outbox re-publish after the dedupe window).
    const again = inOrder[0] as EventEnvelope;
    await publish(js, `${svc.prefix}.events.agent.AgentLost`, encodeEnvelope(again), {
      msgId: `${again.id}-again`,
    });
    await eventually(
      `${name}: all occurrences recorded`,
      async () => (await recorded(sub)) === losses.length,
    );
  }
  // Each delivery commits with the occurrence that fired it, so once all are in, these are final.
  const { rows } = await svc.running.host.pool.query<{ alert: Record<string, unknown> }>(
    "SELECT alert FROM deliveries WHERE subscription_id = $1",
    [sub],
  );
  expect(rows, name).toHaveLength(1);
  expect(rows[0]?.alert, name).toMatchObject({ kind: "AGENT_LOST", count: 3, threshold: 3, key: name });
  const firings = await listFirings(svc.running.host.pool, sub, name);
  expect(
    firings.map((f) => ({ at: f.at.getTime(), count: f.count })),
    name,
  ).toEqual([{ at: t0 + 2 * M, count: 3 }]);
  await eventually(`${name}: alert sent`, () => hooks.requests.some((r) => r.path === `/${name}`), 20_000);
  const sent = hooks.requests.filter((r) => r.path === `/${name}`);
  expect(new Set(sent.map((r) => r.headers["x-codex-delivery-id"])).size, name).toBe(1);
  expect(JSON.parse(sent[0]!.body).alert, name).toMatchObject({ count: 3, threshold: 3, key: name });
}

describe("alert rules with out-of-order events", () => {
  it("fire once, at the third loss, handled in event-time order", async () => {
    await scenario("forward", [0, 1, 2, 3, 4], "one by one");
  });

  it("fire the same alert handled in reverse order", async () => {
    await scenario("reverse", [4, 3, 2, 1, 0], "one by one");
  });

  it("fire the same alert handled in a shuffled order", async () => {
    await scenario("shuffled", [3, 0, 4, 2, 1], "one by one");
  });

  it("fire the same alert when all are published at once, shuffled, one twice, and handled concurrently", async () => {
    await scenario("burst", [2, 4, 0, 3, 1], "all at once");
  });
});
