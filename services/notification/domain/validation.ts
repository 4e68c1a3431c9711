import type { Subscription } from "../../../gen/codex/notification/v1/subscription_pb.js";
import { AlertKind } from "../../../gen/codex/notification/v1/subscription_pb.js";
import type { FieldViolation } from "../../../mesh/errors.js";
import { isNonPublicHost } from "./address-policy.js";
import { PATTERN_CHARS } from "./matching.js";
import { compileTemplate } from "./template.js";

/** Where channels may point; tests relax it to reach receivers on 127.0.0.1 over http. */
export interface TargetPolicy {
  allowHttp: boolean;
  allowPrivateTargets: boolean;
  slackHosts: readonly string[];
}

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
/** addr-spec (RFC 5322) in the dot-atom form every mail system accepts. */
const EMAIL =
  /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/;

/** Milliseconds of a google.protobuf.Duration, or undefined when unset. */
export function durationMs(d: { seconds: bigint; nanos: number } | undefined): number | undefined {
  return d === undefined ? undefined : Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6);
}

function checkUrl(
  v: FieldViolation[],
  field: string,
  raw: string,
  policy: TargetPolicy,
  hosts?: readonly string[],
): void {
  if (raw === "") return void v.push({ field, description: "is required" });
  if (raw.length > 2048) return void v.push({ field, description: "must be at most 2,048 characters" });
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return void v.push({ field, description: "must be an absolute URL" });
  }
  if (url.protocol !== "https:" && !(policy.allowHttp && url.protocol === "http:")) {
    return void v.push({ field, description: "must use https" });
  }
  if (url.username !== "" || url.password !== "") {
    return void v.push({ field, description: "must not carry user info" });
  }
  if (hosts !== undefined && !hosts.includes(url.hostname)) {
    return void v.push({ field, description: `host must be one of ${hosts.join(", ")}` });
  }
  if (!policy.allowPrivateTargets && isNonPublicHost(url.hostname)) {
    v.push({ field, description: "must not point to a loopback, private or link-local address" });
  }
}

function checkTemplate(
  v: FieldViolation[],
  field: string,
  source: string,
  max: number,
  alert: boolean,
): void {
  if (source.length > max) return void v.push({ field, description: `must be at most ${max} characters` });
  const r = compileTemplate(source);
  if (!r.ok)
    return void v.push({ field, description: `at offset ${r.problem.offset}: ${r.problem.message}` });
  if (r.template.roots.has("alert") && !alert) {
    v.push({ field, description: "uses alert.* but the subscription has no alert_rule" });
  }
}

/**
 * Checks a whole subscription as it would be stored (after create defaults or an update's
 * merge). `secretGiven` is the webhook secret supplied in this request, if any.
 */
export function validateSubscription(
  s: Subscription,
  policy: TargetPolicy,
  secretGiven: string | undefined,
): FieldViolation[] {
  const v: FieldViolation[] = [];
  const f = (name: string) => `subscription.${name}`;
  const name = s.displayName.trim();
  if (name.length < 1 || s.displayName.length > 100) {
    v.push({ field: f("display_name"), description: "must be 1-100 characters" });
  }
  const alert = s.alertRule !== undefined;
  if (alert && s.eventTypes.length > 0) {
    v.push({ field: f("event_types"), description: "must be empty when alert_rule is set" });
  } else if (!alert && (s.eventTypes.length < 1 || s.eventTypes.length > 50)) {
    v.push({ field: f("event_types"), description: "must hold 1-50 patterns (or set alert_rule)" });
  }
  s.eventTypes.forEach((p, i) => {
    if (p.length < 1 || p.length > 200 || !PATTERN_CHARS.test(p) || p.startsWith(".") || p.endsWith(".")) {
      v.push({
        field: `${f("event_types")}[${i}]`,
        description: "must be 1-200 characters of letters, digits, '_', '.' and '*'",
      });
    }
  });
  const ch = s.channel;
  switch (ch.case) {
    case "webhook":
      checkUrl(v, f("webhook.url"), ch.value.url, policy);
      if (
        secretGiven !== undefined &&
        secretGiven !== "" &&
        (secretGiven.length < 16 || secretGiven.length > 256)
      ) {
        v.push({ field: f("webhook.secret"), description: "must be 16-256 characters" });
      }
      break;
    case "slack":
      checkUrl(v, f("slack.webhook_url"), ch.value.webhookUrl, policy, policy.slackHosts);
      break;
    case "email":
      if (ch.value.to.length < 1 || ch.value.to.length > 20) {
        v.push({ field: f("email.to"), description: "must hold 1-20 addresses" });
      }
      ch.value.to.forEach((a, i) => {
        if (a.length > 254 || !EMAIL.test(a)) {
          v.push({ field: `${f("email.to")}[${i}]`, description: "is not a valid email address" });
        }
      });
      checkTemplate(v, f("email.subject_template"), ch.value.subjectTemplate, 500, alert);
      break;
    default:
      v.push({ field: f("channel"), description: "exactly one of webhook, slack or email is required" });
  }
  checkTemplate(v, f("template"), s.template, 10_000, alert);
  if (s.alertRule !== undefined) {
    const r = s.alertRule;
    if (r.kind === AlertKind.UNSPECIFIED || AlertKind[r.kind] === undefined) {
      v.push({ field: f("alert_rule.kind"), description: "is required" });
    }
    if (r.threshold < 1 || r.threshold > 10_000) {
      v.push({ field: f("alert_rule.threshold"), description: "must be 1-10,000" });
    }
    const w = durationMs(r.window);
    if (w === undefined || w < MINUTE || w > 7 * DAY) {
      v.push({ field: f("alert_rule.window"), description: "must be between 1 minute and 7 days" });
    }
    const c = durationMs(r.cooldown);
    if (c !== undefined && (c < 0 || c > 7 * DAY)) {
      v.push({ field: f("alert_rule.cooldown"), description: "must be at most 7 days" });
    }
  }
  return v;
}
