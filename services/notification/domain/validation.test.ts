import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AlertKind, SubscriptionSchema } from "../../../gen/codex/notification/v1/subscription_pb.js";
import { validateSubscription } from "./validation.js";

const strict = { allowHttp: false, allowPrivateTargets: false, slackHosts: ["hooks.slack.com"] };
const base = {
  displayName: "ops",
  eventTypes: ["ProjectCreated"],
  channel: { case: "webhook" as const, value: { url: "https://example.com/hook" } },
};
const fields = (init: object, secret?: string, policy = strict) =>
  validateSubscription(create(SubscriptionSchema, { ...base, ...init }), policy, secret).map((v) => v.field);

describe("subscription validation", () => {
  it("accepts a well-formed subscription", () => {
    expect(fields({})).toEqual([]);
    expect(fields({}, "0123456789abcdef")).toEqual([]);
  });

  it("refuses plain http, loopback and private targets unless configured", () => {
    expect(fields({ channel: { case: "webhook", value: { url: "http://example.com/h" } } })).toEqual([
      "subscription.webhook.url",
    ]);
    expect(fields({ channel: { case: "webhook", value: { url: "https://127.0.0.1/h" } } })).toEqual([
      "subscription.webhook.url",
    ]);
    expect(fields({ channel: { case: "webhook", value: { url: "https://[::1]/h" } } })).toEqual([
      "subscription.webhook.url",
    ]);
    expect(fields({ channel: { case: "webhook", value: { url: "https://u:p@example.com/h" } } })).toEqual([
      "subscription.webhook.url",
    ]);
    const relaxed = { ...strict, allowHttp: true, allowPrivateTargets: true };
    expect(
      fields({ channel: { case: "webhook", value: { url: "http://127.0.0.1:8080/h" } } }, undefined, relaxed),
    ).toEqual([]);
  });

  it("checks Slack hosts, email addresses, secrets and templates", () => {
    expect(
      fields({ channel: { case: "slack", value: { webhookUrl: "https://hooks.slack.com/services/T/B/X" } } }),
    ).toEqual([]);
    expect(
      fields({ channel: { case: "slack", value: { webhookUrl: "https://evil.example/services/T/B/X" } } }),
    ).toEqual(["subscription.slack.webhook_url"]);
    expect(fields({ channel: { case: "email", value: { to: ["a@example.com", "nope"] } } })).toEqual([
      "subscription.email.to[1]",
    ]);
    expect(fields({ channel: { case: "email", value: { to: [] } } })).toEqual(["subscription.email.to"]);
    expect(fields({}, "short")).toEqual(["subscription.webhook.secret"]);
    expect(fields({ template: "{{payload.x" })).toEqual(["subscription.template"]);
    expect(fields({ template: "{{alert.count}}" })).toEqual(["subscription.template"]);
    expect(fields({ channel: { case: undefined } })).toEqual(["subscription.channel"]);
  });

  it("requires event_types xor alert_rule, with bounded alert settings", () => {
    expect(fields({ eventTypes: [] })).toEqual(["subscription.event_types"]);
    expect(fields({ eventTypes: ["a b"] })).toEqual(["subscription.event_types[0]"]);
    const rule = { kind: AlertKind.AGENT_LOST, threshold: 3, window: { seconds: 600n } };
    expect(fields({ eventTypes: [], alertRule: rule, template: "{{alert.count}}" })).toEqual([]);
    expect(fields({ alertRule: rule })).toEqual(["subscription.event_types"]);
    expect(
      fields({
        eventTypes: [],
        alertRule: {
          kind: AlertKind.UNSPECIFIED,
          threshold: 0,
          window: { seconds: 30n },
          cooldown: { seconds: 8n * 86_400n },
        },
      }),
    ).toEqual([
      "subscription.alert_rule.kind",
      "subscription.alert_rule.threshold",
      "subscription.alert_rule.window",
      "subscription.alert_rule.cooldown",
    ]);
  });
});
