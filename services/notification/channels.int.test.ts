import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  MemberAddedSchema,
  ProjectCreatedSchema,
  ProjectUpdatedSchema,
} from "../../gen/codex/events/v1/project_events_pb.js";
import { DeliveryOutcome } from "../../gen/codex/notification/v1/delivery_pb.js";
import { NotificationService } from "../../gen/codex/notification/v1/notification_service_pb.js";
import type { Principal } from "../../mesh/context.js";
import { Code, type ServiceError } from "../../mesh/errors.js";
import { eventually } from "../../mesh/nats/testing.js";
import { checkHealth } from "../../test/support/grpc-probes.js";
import { startTestService, type TestService } from "../../test/support/harness.js";
import { verifySignatureHeader } from "./domain/signing.js";
import { notificationService } from "./service.js";
import { envelopeOf, notificationTestEnv, publishEvent } from "./testing/events.js";
import { HttpReceiver, SmtpReceiver } from "./testing/receivers.js";

const SECRET = "whsec-0123456789abcdef";
const maintainer: Principal = { type: "user", id: "mia", projectRoles: { p1: "maintainer", p2: "viewer" } };
const admin: Principal = { type: "user", id: "root", projectRoles: { "*": "admin" } };

let svc: TestService<typeof notificationService.config & object>;
let hooks: HttpReceiver;
let smtp: SmtpReceiver;

beforeAll(async () => {
  hooks = await new HttpReceiver().start();
  smtp = await new SmtpReceiver().start();
  svc = await startTestService(notificationService, { env: notificationTestEnv({ SMTP_URL: smtp.url }) });
});

afterAll(async () => {
  await svc?.cleanup();
  await hooks?.stop();
  await smtp?.stop();
});

const publish = (env: Parameters<typeof publishEvent>[2]) =>
  publishEvent(svc.running.host.nats.js, svc.prefix, env);
const onPath = (path: string) => hooks.requests.filter((r) => r.path === path);

describe("notification channels", () => {
  it("reports SERVING once up", async () => {
    expect(await checkHealth(svc.running.address)).toBe("SERVING");
    expect(await checkHealth(svc.running.address, NotificationService.typeName)).toBe("SERVING");
  });

  it("delivers signed, templated webhooks for matching events of the subscription's project only", async () => {
    const client = svc.client(NotificationService, maintainer);
    const { subscription: a } = await client.createSubscription({
      subscription: {
        projectId: "p1",
        displayName: "project changes",
        eventTypes: ["codex.events.v1.Project*"],
        channel: { case: "webhook", value: { url: `${hooks.url}/a`, secret: SECRET } },
        template:
          '{"id":"{{event.id}}","name":"{{payload.name}}","by":"{{event.actor.display_name}}","f":"{{payload.changed_fields.0}}"}',
      },
    });
    expect(a?.channel.case === "webhook" && a.channel.value).toMatchObject({ secret: "", hasSecret: true });
    const adminClient = svc.client(NotificationService, admin);
    const { subscription: all } = await adminClient.createSubscription({
      subscription: {
        displayName: "everything, every project",
        eventTypes: ["ProjectCreated"],
        channel: { case: "webhook", value: { url: `${hooks.url}/all` } },
      },
    });

    const created = envelopeOf(
      ProjectCreatedSchema,
      { projectId: "p1", name: "alpha" },
      { aggregateType: "project", aggregateId: "p1", projectId: "p1" },
    );
    const updated = envelopeOf(
      ProjectUpdatedSchema,
      { projectId: "p1", changedFields: ["display_name"] },
      { aggregateType: "project", aggregateId: "p1", projectId: "p1" },
    );
    const member = envelopeOf(
      MemberAddedSchema,
      { projectId: "p1" },
      { aggregateType: "member", aggregateId: "m1", projectId: "p1" },
    );
    const otherProject = envelopeOf(
      ProjectCreatedSchema,
      { projectId: "p9", name: "zeta" },
      { aggregateType: "project", aggregateId: "p9", projectId: "p9" },
    );
    for (const e of [created, updated, member, otherProject]) await publish(e);

    await eventually(
      "2 webhooks to /a and 2 to /all",
      () => onPath("/a").length >= 2 && onPath("/all").length >= 2,
    );
    await new Promise((r) => setTimeout(r, 300));
    const got = onPath("/a");
    expect(got).toHaveLength(2); // MemberAdded and project p9 are filtered out
    const byEvent = new Map(got.map((r) => [r.headers["x-codex-event-id"], r]));
    const c = byEvent.get(created.id)!;
    expect(JSON.parse(c.body)).toEqual({ id: created.id, name: "alpha", by: "Alice", f: "" });
    expect(c.headers["x-codex-event-type"]).toBe("codex.events.v1.ProjectCreated");
    expect(c.headers["content-type"]).toBe("application/json");
    expect(verifySignatureHeader(SECRET, c.body, String(c.headers["x-codex-signature"]))).toBe(true);
    expect(
      verifySignatureHeader("not-the-secret-at-all", c.body, String(c.headers["x-codex-signature"])),
    ).toBe(false);
    expect(JSON.parse(byEvent.get(updated.id)!.body).f).toBe("display_name");
    // The all-project subscription saw both ProjectCreated events, with the default body, unsigned.
    const all2 = onPath("/all");
    expect(all2.map((r) => JSON.parse(r.body).payload.name).sort()).toEqual(["alpha", "zeta"]);
    expect(JSON.parse(all2[0]!.body)).toMatchObject({
      type: "codex.events.v1.ProjectCreated",
      aggregate_type: "project",
    });
    expect(all2[0]!.headers["x-codex-signature"]).toBeUndefined();

    let deliveries: Awaited<ReturnType<typeof client.listDeliveries>>["deliveries"] = [];
    await eventually("both attempts recorded", async () => {
      ({ deliveries } = await client.listDeliveries({ subscriptionId: a!.id }));
      return deliveries.every((d) => d.outcome === DeliveryOutcome.SUCCEEDED);
    });
    expect(deliveries).toHaveLength(2);
    for (const d of deliveries) {
      expect(d).toMatchObject({
        outcome: DeliveryOutcome.SUCCEEDED,
        statusCode: 200,
        attempt: 1,
        test: false,
      });
      expect(d.latency).toBeDefined();
      expect(d.deliveryKey).toBe(byEvent.get(d.eventId)!.headers["x-codex-delivery-id"]);
    }
    expect(all?.projectId).toBe("");
  });

  it("never returns the webhook secret or the Slack URL, and posts {text} to Slack", async () => {
    const client = svc.client(NotificationService, maintainer);
    const slackUrl = `${hooks.url}/services/T000/B000/XoXoSlackToken`;
    const { subscription: s } = await client.createSubscription({
      subscription: {
        projectId: "p1",
        displayName: "slack",
        eventTypes: ["ProjectArchived", "Project*d"],
        channel: { case: "slack", value: { webhookUrl: slackUrl } },
        template: "{{event.type}}: {{payload.name}} ({{subscription.display_name}})",
      },
    });
    expect(s?.channel.case === "slack" && s.channel.value.webhookUrl).toBe(
      `${hooks.url}/services/T000/B000/****`,
    );
    const env = envelopeOf(
      ProjectCreatedSchema,
      { projectId: "p1", name: "beta" },
      { aggregateType: "project", aggregateId: "p1", projectId: "p1" },
    );
    await publish(env);
    await eventually("slack message", () => onPath("/services/T000/B000/XoXoSlackToken").length >= 1);
    const msg = onPath("/services/T000/B000/XoXoSlackToken")[0]!;
    expect(JSON.parse(msg.body)).toEqual({ text: "codex.events.v1.ProjectCreated: beta (slack)" });

    const got = await client.getSubscription({ subscriptionId: s!.id });
    const listed = await client.listSubscriptions({ projectId: "p1" });
    const text = JSON.stringify([got, listed], (_k, v) => (typeof v === "bigint" ? String(v) : v));
    expect(text).not.toContain("XoXoSlackToken");
    expect(text).not.toContain(SECRET);
    expect(listed.subscriptions.length).toBeGreaterThanOrEqual(2);
  });

  it("sends email through SMTP with the rendered subject and body", async () => {
    const client = svc.client(NotificationService, maintainer);
    const { subscription: s } = await client.createSubscription({
      subscription: {
        projectId: "p1",
        displayName: "mail",
        eventTypes: ["codex.events.v1.ProjectCreated"],
        channel: {
          case: "email",
          value: {
            to: ["ops@example.com", "lead@example.com"],
            subjectTemplate: "[{{event.project_id}}] {{payload.name}}\ncreated",
          },
        },
        template: "Project {{payload.name}} was created by {{event.actor.id}}.",
      },
    });
    const env = envelopeOf(
      ProjectCreatedSchema,
      { projectId: "p1", name: "gamma" },
      { aggregateType: "project", aggregateId: "p1", projectId: "p1" },
    );
    await publish(env);
    await eventually("an email", () => smtp.mails.some((m) => m.subject.includes("gamma")));
    const mail = smtp.mails.find((m) => m.subject.includes("gamma"))!;
    expect(mail.subject).toBe("[p1] gamma created");
    expect(mail.to.sort()).toEqual(["lead@example.com", "ops@example.com"]);
    expect(mail.body.trim()).toBe("Project gamma was created by alice.");
    expect(mail.headers["x-codex-event-id"]).toBe(env.id);
    let deliveries: Awaited<ReturnType<typeof client.listDeliveries>>["deliveries"] = [];
    await eventually("the attempt recorded", async () => {
      ({ deliveries } = await client.listDeliveries({ subscriptionId: s!.id }));
      return deliveries[0]?.outcome === DeliveryOutcome.SUCCEEDED;
    });
    expect(deliveries[0]).toMatchObject({ outcome: DeliveryOutcome.SUCCEEDED, statusCode: 250 });
    expect(mail.headers["x-codex-delivery-id"]).toBe(deliveries[0]!.deliveryKey);
  });

  it("TestSubscription sends a sample through the channel and reports the rendered body", async () => {
    const client = svc.client(NotificationService, maintainer);
    const { subscription: s } = await client.createSubscription({
      subscription: {
        projectId: "p1",
        displayName: "probe",
        eventTypes: ["ProjectCreated"],
        channel: { case: "webhook", value: { url: `${hooks.url}/probe`, secret: SECRET } },
        template: "sample {{payload.name}} in {{event.project_id}}",
        enabled: false,
      },
    });
    const res = await client.testSubscription({ subscriptionId: s!.id });
    expect(res.renderedBody).toBe("sample sample-name in p1");
    expect(res.delivery).toMatchObject({ test: true, outcome: DeliveryOutcome.SUCCEEDED, statusCode: 200 });
    const req = onPath("/probe")[0]!;
    expect(req.body).toBe(res.renderedBody);
    expect(verifySignatureHeader(SECRET, req.body, String(req.headers["x-codex-signature"]))).toBe(true);
    for (let i = 1; i < 10; i++) await client.testSubscription({ subscriptionId: s!.id });
    const limited = await client
      .testSubscription({ subscriptionId: s!.id })
      .catch((e: unknown) => e as ServiceError);
    expect(limited).toMatchObject({ code: Code.RESOURCE_EXHAUSTED });
    expect((limited as ServiceError).retryAfterMs).toBeGreaterThan(0);
    expect(onPath("/probe")).toHaveLength(10);
    await expect(
      client.testSubscription({ subscriptionId: s!.id, eventType: "codex.events.v1.Nope" }),
    ).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT });
  });
});
