import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProjectCreatedSchema } from "../../gen/codex/events/v1/project_events_pb.js";
import { NotificationService } from "../../gen/codex/notification/v1/notification_service_pb.js";
import { ChannelType } from "../../gen/codex/notification/v1/subscription_pb.js";
import type { Principal } from "../../mesh/context.js";
import { Code } from "../../mesh/errors.js";
import { eventually } from "../../mesh/nats/testing.js";
import { startTestService, type TestService } from "../../test/support/harness.js";
import { notificationService } from "./service.js";
import { envelopeOf, notificationTestEnv, publishEvent } from "./testing/events.js";
import { HttpReceiver } from "./testing/receivers.js";

const maintainer: Principal = { type: "user", id: "mia", projectRoles: { p1: "maintainer" } };
const viewer: Principal = { type: "user", id: "vic", projectRoles: { p1: "viewer" } };
const outsider: Principal = { type: "user", id: "otto", projectRoles: { p2: "owner" } };
const admin: Principal = { type: "user", id: "root", projectRoles: { "*": "admin" } };
const scheduler: Principal = { type: "service", id: "scheduler" };

let svc: TestService<typeof notificationService.config & object>;
let hooks: HttpReceiver;

beforeAll(async () => {
  hooks = await new HttpReceiver().start();
  svc = await startTestService(notificationService, {
    env: notificationTestEnv({ MAX_SUBSCRIPTIONS_PER_PROJECT: "5" }),
  });
});

afterAll(async () => {
  await svc?.cleanup();
  await hooks?.stop();
});

const hook = (path: string, secret = "") => ({
  case: "webhook" as const,
  value: { url: `${hooks.url}${path}`, secret },
});
const sub = (projectId: string, name: string, path = "/x") => ({
  subscription: { projectId, displayName: name, eventTypes: ["ProjectCreated"], channel: hook(path) },
});

describe("authorization", () => {
  it("refuses calls without a principal, and roles below what each RPC needs", async () => {
    await expect(svc.client(NotificationService).listSubscriptions({})).rejects.toMatchObject({
      code: Code.UNAUTHENTICATED,
    });
    const { subscription: s } = await svc
      .client(NotificationService, maintainer)
      .createSubscription(sub("p1", "mine"));
    const asViewer = svc.client(NotificationService, viewer);
    expect((await asViewer.getSubscription({ subscriptionId: s!.id })).subscription?.id).toBe(s!.id);
    await expect(asViewer.createSubscription(sub("p1", "no"))).rejects.toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    await expect(
      asViewer.updateSubscription({
        subscription: { id: s!.id, displayName: "x" },
        updateMask: { paths: ["display_name"] },
      }),
    ).rejects.toMatchObject({ code: Code.PERMISSION_DENIED });
    await expect(asViewer.testSubscription({ subscriptionId: s!.id })).rejects.toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    const asOutsider = svc.client(NotificationService, outsider);
    await expect(asOutsider.getSubscription({ subscriptionId: s!.id })).rejects.toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    await expect(asOutsider.getSubscription({ subscriptionId: randomUUID() })).rejects.toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    await expect(asOutsider.listDeliveries({ subscriptionId: s!.id })).rejects.toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    await expect(asOutsider.listSubscriptions({ projectId: "p1" })).rejects.toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    expect((await asOutsider.listSubscriptions({})).subscriptions.every((x) => x.projectId === "p2")).toBe(
      true,
    );
    // All-project subscriptions: platform admins (and services) only.
    await expect(
      svc.client(NotificationService, maintainer).createSubscription(sub("", "all")),
    ).rejects.toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    const { subscription: all } = await svc
      .client(NotificationService, admin)
      .createSubscription(sub("", "all"));
    await expect(asViewer.getSubscription({ subscriptionId: all!.id })).rejects.toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    expect((await asViewer.listSubscriptions({})).subscriptions.map((x) => x.id)).not.toContain(all!.id);
    expect(
      (await svc.client(NotificationService, scheduler).getSubscription({ subscriptionId: all!.id }))
        .subscription?.id,
    ).toBe(all!.id);
    await expect(
      svc.client(NotificationService, admin).getSubscription({ subscriptionId: randomUUID() }),
    ).rejects.toMatchObject({
      code: Code.NOT_FOUND,
    });
  });
});

describe("subscription lifecycle", () => {
  it("validates input with field violations", async () => {
    const c = svc.client(NotificationService, maintainer);
    const bad = async (s: Record<string, unknown>, field: string) => {
      const err = await c
        .createSubscription({
          subscription: { projectId: "p1", displayName: "v", eventTypes: ["*"], channel: hook("/v"), ...s },
        })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: Code.INVALID_ARGUMENT });
      expect(String((err as Error).message)).toContain(field);
    };
    await bad({ template: "{{event.id" }, "subscription.template");
    await bad({ template: "{{secret.x}}" }, "subscription.template");
    await bad({ eventTypes: [] }, "subscription.event_types");
    await bad({ eventTypes: ["bad pattern!"] }, "subscription.event_types[0]");
    await bad({ channel: hook("/v", "short") }, "subscription.webhook.secret");
    await bad(
      { channel: { case: "webhook", value: { url: "ftp://example.com/x" } } },
      "subscription.webhook.url",
    );
    await bad({ channel: { case: "email", value: { to: ["not an address"] } } }, "subscription.email.to[0]");
    await bad(
      { channel: { case: "slack", value: { webhookUrl: "https://evil.example.com/services/x" } } },
      "subscription.slack.webhook_url",
    );
    await bad({ channel: { case: undefined } }, "subscription.channel");
  });

  it("updates by mask with etags, keeps or rotates the secret, and pages through listings", async () => {
    const c = svc.client(NotificationService, maintainer);
    const { subscription: s } = await c.createSubscription({
      subscription: {
        projectId: "p1",
        displayName: "before",
        eventTypes: ["*"],
        channel: hook("/u", "first-secret-0123456"),
      },
    });
    const renamed = await c.updateSubscription({
      subscription: { id: s!.id, displayName: "after", etag: s!.etag, enabled: false },
      updateMask: { paths: ["display_name", "enabled"] },
    });
    expect(renamed.subscription).toMatchObject({ displayName: "after", enabled: false });
    expect(renamed.subscription?.channel.value).toMatchObject({ hasSecret: true });
    await expect(
      c.updateSubscription({
        subscription: { id: s!.id, displayName: "stale", etag: s!.etag },
        updateMask: { paths: ["display_name"] },
      }),
    ).rejects.toMatchObject({ code: Code.ABORTED });
    await expect(
      c.updateSubscription({ subscription: { id: s!.id }, updateMask: { paths: ["project_id"] } }),
    ).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
    });
    await expect(
      c.updateSubscription({ subscription: { id: s!.id }, updateMask: { paths: [] } }),
    ).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
    });
    const cleared = await c.updateSubscription({
      subscription: { id: s!.id, channel: hook("/u", "") },
      updateMask: { paths: ["webhook.secret"] },
    });
    expect(cleared.subscription?.channel.value).toMatchObject({ hasSecret: false, url: `${hooks.url}/u` });
    const switched = await c.updateSubscription({
      subscription: { id: s!.id, channel: { case: "email", value: { to: ["a@example.com"] } } },
      updateMask: { paths: ["email"] },
    });
    expect(switched.subscription?.channel.case).toBe("email");

    const filtered = await c.listSubscriptions({
      projectId: "p1",
      enabled: false,
      channelType: ChannelType.EMAIL,
    });
    expect(filtered.subscriptions.map((x) => x.id)).toEqual([s!.id]);
    const byType = await c.listSubscriptions({ projectId: "p1", eventType: "codex.events.v1.MemberAdded" });
    expect(byType.subscriptions.map((x) => x.id)).toContain(s!.id); // "*" matches it
    expect(
      byType.subscriptions.every((x) => x.eventTypes.some((p) => p === "*" || p.includes("Member"))),
    ).toBe(true);

    const seen: string[] = [];
    let token = "";
    do {
      const page = await c.listSubscriptions({ projectId: "p1", pageSize: 1, pageToken: token });
      seen.push(...page.subscriptions.map((x) => x.id));
      token = page.nextPageToken;
    } while (token !== "");
    const everything = await c.listSubscriptions({ projectId: "p1" });
    expect(seen).toEqual(everything.subscriptions.map((x) => x.id));
    expect(seen.length).toBeGreaterThan(1);
    const first = await c.listSubscriptions({ projectId: "p1", pageSize: 1 });
    await expect(
      c.listSubscriptions({ projectId: "p1", enabled: true, pageToken: first.nextPageToken }),
    ).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
    });
  });

  it("replays CreateSubscription for a reused request_id and enforces the per-project limit", async () => {
    const c = svc.client(NotificationService, { type: "user", id: "lim", projectRoles: { p3: "owner" } });
    const requestId = randomUUID();
    const a = await c.createSubscription({ ...sub("p3", "once"), requestId });
    const b = await c.createSubscription({ ...sub("p3", "once"), requestId });
    expect(b.subscription?.id).toBe(a.subscription?.id);
    await expect(c.createSubscription({ ...sub("p3", "different"), requestId })).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
    });
    for (let i = 0; i < 4; i++) await c.createSubscription(sub("p3", `n${i}`));
    await expect(c.createSubscription(sub("p3", "sixth"))).rejects.toMatchObject({
      code: Code.RESOURCE_EXHAUSTED,
    });
  });

  it("delete cancels pending deliveries and keeps the history readable", async () => {
    hooks.responder = (_n, r) => (r.path === "/slow" ? { status: 503 } : { status: 200 });
    const c = svc.client(NotificationService, maintainer);
    const { subscription: s } = await c.createSubscription(sub("p1", "doomed", "/slow"));
    const env = envelopeOf(
      ProjectCreatedSchema,
      { projectId: "p1" },
      { aggregateType: "project", aggregateId: "p1", projectId: "p1" },
    );
    await publishEvent(svc.running.host.nats.js, svc.prefix, env);
    await eventually("first failed attempt recorded", async () =>
      (await c.listDeliveries({ subscriptionId: s!.id })).deliveries.some((d) => d.statusCode === 503),
    );
    await c.deleteSubscription({ subscriptionId: s!.id });
    await expect(c.getSubscription({ subscriptionId: s!.id })).rejects.toMatchObject({
      code: Code.NOT_FOUND,
    });
    const sent = hooks.requests.filter((r) => r.path === "/slow").length;
    await new Promise((r) => setTimeout(r, 600));
    expect(hooks.requests.filter((r) => r.path === "/slow").length).toBeLessThanOrEqual(sent + 1);
    const { deliveries } = await c.listDeliveries({ subscriptionId: s!.id });
    expect(deliveries.length).toBeGreaterThan(0);
    expect(deliveries.every((d) => d.outcome !== 1)).toBe(true); // no PENDING left
  });

  it("records a request that was in flight when the subscription was deleted, and sends no other", async () => {
    // The receiver holds the first request while the subscription is deleted.
    hooks.responder = (_n, r) => (r.path === "/held" ? { status: 503, delayMs: 400 } : { status: 200 });
    const c = svc.client(NotificationService, maintainer);
    const { subscription: s } = await c.createSubscription(sub("p1", "in-flight", "/held"));
    const env = envelopeOf(
      ProjectCreatedSchema,
      { projectId: "p1" },
      { aggregateType: "project", aggregateId: "p1", projectId: "p1" },
    );
    await publishEvent(svc.running.host.nats.js, svc.prefix, env);
    await eventually("request in flight", () => hooks.requests.some((r) => r.path === "/held"));
    await c.deleteSubscription({ subscriptionId: s!.id });
    const made = async () => (await c.listDeliveries({ subscriptionId: s!.id })).deliveries;
    await eventually("the in-flight request recorded", async () =>
      (await made()).some((d) => d.statusCode === 503),
    );
    await new Promise((r) => setTimeout(r, 600));
    expect(hooks.requests.filter((r) => r.path === "/held")).toHaveLength(1);
    const history = await made();
    expect(history.map((d) => [d.attempt, d.statusCode])).toEqual([[1, 503]]);
    expect(history.every((d) => d.outcome !== 1)).toBe(true); // nothing PENDING: no retry follows
  });
});
