import { timestampMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProjectArchivedSchema, ProjectCreatedSchema } from "../../gen/codex/events/v1/project_events_pb.js";
import { DeadLetterState, DeliveryOutcome } from "../../gen/codex/notification/v1/delivery_pb.js";
import { NotificationService } from "../../gen/codex/notification/v1/notification_service_pb.js";
import type { Principal } from "../../mesh/context.js";
import { eventually, readStream } from "../../mesh/nats/testing.js";
import { startTestService, type TestService } from "../../test/support/harness.js";
import { notificationService } from "./service.js";
import { sweepHistory } from "./store/retention.js";
import { envelopeOf, notificationTestEnv, publishEvent } from "./testing/events.js";
import { HttpReceiver } from "./testing/receivers.js";

const owner: Principal = { type: "user", id: "olga", projectRoles: { p1: "owner" } };
const admin: Principal = { type: "service", id: "ops-tool" };
const BASE = 100;
const CAP = 400;

let svc: TestService<typeof notificationService.config & object>;
let hooks: HttpReceiver;
let healthy = false;

beforeAll(async () => {
  hooks = await new HttpReceiver().start();
  hooks.responder = (_n, r) =>
    r.path === "/gone"
      ? { status: 404 }
      : r.path === "/hold"
        ? { status: 200, delayMs: 5_000 }
        : r.path === "/flaky" && !healthy
          ? { status: 503 }
          : { status: 200 };
  svc = await startTestService(notificationService, {
    env: notificationTestEnv({
      DELIVERY_MAX_ATTEMPTS: "4",
      DELIVERY_BACKOFF_BASE: `${BASE}ms`,
      DELIVERY_BACKOFF_CAP: `${CAP}ms`,
    }),
  });
});

afterAll(async () => {
  await svc?.cleanup();
  await hooks?.stop();
});

const onPath = (path: string) => hooks.requests.filter((r) => r.path === path);
const webhook = (path: string) => ({ case: "webhook" as const, value: { url: `${hooks.url}${path}` } });

describe("retries, dead letters and redelivery", () => {
  it("retries with backoff, dead-letters after the last attempt, and redelivers successfully", async () => {
    const client = svc.client(NotificationService, owner);
    const watcher = await svc.client(NotificationService, admin).createSubscription({
      subscription: {
        displayName: "dead letter watch",
        eventTypes: ["NotificationDeadLettered"],
        channel: webhook("/watch"),
      },
    });
    const { subscription: sub } = await client.createSubscription({
      subscription: { projectId: "p1", displayName: "flaky", eventTypes: ["*"], channel: webhook("/flaky") },
    });
    const { subscription: gone } = await client.createSubscription({
      subscription: { projectId: "p1", displayName: "gone", eventTypes: ["*"], channel: webhook("/gone") },
    });
    const env = envelopeOf(
      ProjectCreatedSchema,
      { projectId: "p1", name: "x" },
      { aggregateType: "project", aggregateId: "p1", projectId: "p1" },
    );
    await publishEvent(svc.running.host.nats.js, svc.prefix, env);

    let open: Awaited<ReturnType<typeof client.listDeadLetters>>["deadLetters"] = [];
    await eventually("two dead letters", async () => {
      ({ deadLetters: open } = await client.listDeadLetters({
        subscriptionId: "-",
        state: DeadLetterState.OPEN,
      }));
      return open.length === 2;
    });
    const flakyDl = open.find((d) => d.subscriptionId === sub!.id)!;
    expect(flakyDl).toMatchObject({
      attempts: 4,
      lastStatusCode: 503,
      eventId: env.id,
      state: DeadLetterState.OPEN,
    });
    expect(open.find((d) => d.subscriptionId === gone!.id)).toMatchObject({
      attempts: 1,
      lastStatusCode: 404,
    });
    expect(onPath("/gone")).toHaveLength(1); // 404 is final: no retry

    const sent = onPath("/flaky");
    expect(sent).toHaveLength(4);
    expect(new Set(sent.map((r) => r.headers["x-codex-delivery-id"]))).toEqual(
      new Set([flakyDl.deliveryKey]),
    );
    const { deliveries } = await client.listDeliveries({ subscriptionId: sub!.id });
    const attempts = [...deliveries].sort((a, b) => a.attempt - b.attempt);
    expect(attempts.map((d) => [d.attempt, d.outcome, d.statusCode])).toEqual([
      [1, DeliveryOutcome.FAILED, 503],
      [2, DeliveryOutcome.FAILED, 503],
      [3, DeliveryOutcome.FAILED, 503],
      [4, DeliveryOutcome.DEAD_LETTERED, 503],
    ]);
    for (const [i, a] of attempts.slice(0, 3).entries()) {
      expect(a.error).toContain("HTTP 503");
      // Full jitter: the wait is drawn from [0, min(cap, base * 2^i)), and the next attempt never comes early.
      const planned = timestampMs(a.nextAttemptTime!) - timestampMs(a.attemptTime!);
      expect(planned).toBeGreaterThanOrEqual(0);
      expect(planned).toBeLessThanOrEqual(Math.min(CAP, BASE * 2 ** i) + 5);
      expect(sent[i + 1]!.at).toBeGreaterThanOrEqual(timestampMs(a.nextAttemptTime!) - 5);
    }
    expect(attempts[3]!.nextAttemptTime).toBeUndefined();

    // NotificationDeadLettered was published, reached the subscription naming it, never the failing one.
    await eventually("dead letter notices", () => onPath("/watch").length === 2);
    const notices = onPath("/watch").map((r) => JSON.parse(r.body).payload);
    expect(notices.map((n) => n.subscription_id).sort()).toEqual([sub!.id, gone!.id].sort());
    expect(watcher.subscription?.id).toBeDefined();

    healthy = true;
    const re = await client.redeliverDeadLetter({ subscriptionId: sub!.id, deadLetterId: flakyDl.id });
    expect(re.deadLetter).toMatchObject({ state: DeadLetterState.REDELIVERING, redeliveredBy: "olga" });
    expect(re.delivery).toMatchObject({
      attempt: 5,
      outcome: DeliveryOutcome.PENDING,
      deliveryKey: flakyDl.deliveryKey,
    });
    await eventually("dead letter resolved", async () => {
      const { deadLetters } = await client.listDeadLetters({ subscriptionId: sub!.id });
      return deadLetters[0]?.state === DeadLetterState.RESOLVED;
    });
    expect(onPath("/flaky")).toHaveLength(5);
    expect(onPath("/flaky")[4]!.headers["x-codex-delivery-id"]).toBe(flakyDl.deliveryKey);
    const after = await client.listDeliveries({
      subscriptionId: sub!.id,
      outcome: DeliveryOutcome.SUCCEEDED,
    });
    expect(after.deliveries.map((d) => d.attempt)).toEqual([5]);
    await expect(
      client.redeliverDeadLetter({ subscriptionId: sub!.id, deadLetterId: flakyDl.id }),
    ).rejects.toMatchObject({
      code: 9,
    });

    const stored = await readStream(svc.running.host.nats.jsm, `${svc.prefix.toUpperCase()}_EVENTS`);
    const subjects = stored.map((m) => m.subject.slice(svc.prefix.length + 1));
    expect(subjects.filter((s) => s === "events.subscription.NotificationDeadLettered")).toHaveLength(2);
    expect(subjects.filter((s) => s === "events.subscription.SubscriptionCreated")).toHaveLength(3);
    await eventually("delivered events relayed", async () => {
      const all = await readStream(svc.running.host.nats.jsm, `${svc.prefix.toUpperCase()}_EVENTS`);
      return all.some((m) => m.subject.endsWith(".NotificationDelivered"));
    });
  });

  it("retention removes finished history but never pending work or what it needs", async () => {
    await svc.client(NotificationService, admin).createSubscription({
      subscription: {
        projectId: "p2",
        displayName: "hold",
        eventTypes: ["ProjectArchived"],
        channel: webhook("/hold"),
      },
    });
    const env = envelopeOf(
      ProjectArchivedSchema,
      { projectId: "p2" },
      { aggregateType: "project", aggregateId: "p2", projectId: "p2" },
    );
    await publishEvent(svc.running.host.nats.js, svc.prefix, env);
    await eventually("the held delivery in flight", () => onPath("/hold").length === 1);
    const pool = svc.running.host.pool;
    const removed = await sweepHistory(pool, new Date(Date.now() + 60 * 60_000));
    expect(removed.attempts).toBeGreaterThan(0);
    expect(removed.deadLetters).toBe(2);
    const left = async (table: string) =>
      (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n;
    expect(await left("deliveries")).toBe(1);
    expect(await left("events")).toBe(1);
    expect(await left("dead_letters")).toBe(0);
    const pending = await pool.query("SELECT event_id FROM delivery_attempts WHERE outcome = 'pending'");
    expect(pending.rows).toEqual([{ event_id: env.id }]);
  });
});
