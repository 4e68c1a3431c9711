import { clone, create } from "@bufbuild/protobuf";
import {
  type AlertRule,
  type Subscription,
  SubscriptionSchema,
} from "../../../gen/codex/notification/v1/subscription_pb.js";
import type { SecretBox } from "../../../mesh/crypto/secret-box.js";
import { invalidArgument } from "../../../mesh/errors.js";
import { durationMs, type TargetPolicy, validateSubscription } from "../domain/validation.js";
import {
  credentialAad,
  redactSlackUrl,
  type StoredAlertRule,
  type SubscriptionRecord,
  toProto,
} from "../store/subscription-record.js";
import type { SubscriptionWrite } from "../store/subscriptions.js";

function storedRule(r: AlertRule | undefined): StoredAlertRule | null {
  if (r === undefined) return null;
  const windowMs = durationMs(r.window) ?? 0;
  return { kind: r.kind, threshold: r.threshold, windowMs, cooldownMs: durationMs(r.cooldown) ?? windowMs };
}

function check(s: Subscription, targets: TargetPolicy, secretGiven: string | undefined): void {
  const v = validateSubscription(s, targets, secretGiven);
  if (v.length > 0) throw invalidArgument(`invalid subscription: ${v[0]?.field} ${v[0]?.description}`, v);
}

/**
 * Builds what is stored from a validated subscription. `credential` says what to do with the
 * sealed secret: keep the current one, or seal the given plaintext (undefined = none).
 */
function toWrite(
  id: string,
  s: Subscription,
  box: SecretBox,
  credential: { keep: Buffer | null } | { plain: string | undefined },
): SubscriptionWrite {
  const ch = s.channel;
  let sealed: Buffer | null = null;
  if ("keep" in credential) sealed = credential.keep;
  else if (
    credential.plain !== undefined &&
    credential.plain !== "" &&
    (ch.case === "webhook" || ch.case === "slack")
  ) {
    sealed = box.seal(credential.plain, credentialAad(id, ch.case));
  }
  const channel: SubscriptionWrite["channel"] =
    ch.case === "webhook"
      ? { type: "webhook", url: ch.value.url }
      : ch.case === "slack"
        ? { type: "slack", redactedUrl: redactSlackUrl(ch.value.webhookUrl) }
        : { type: "email", to: [...(ch.value?.to ?? [])], subjectTemplate: ch.value?.subjectTemplate ?? "" };
  return {
    displayName: s.displayName.trim(),
    eventTypes: [...new Set(s.eventTypes)],
    channel,
    credential: sealed,
    template: s.template,
    alertRule: storedRule(s.alertRule),
    enabled: s.enabled ?? true,
  };
}

/** CreateSubscription input → stored content (secrets sealed under the new id). */
export function writeForCreate(
  id: string,
  input: Subscription,
  box: SecretBox,
  targets: TargetPolicy,
): SubscriptionWrite {
  const s = clone(SubscriptionSchema, input);
  s.enabled ??= true;
  const ch = s.channel;
  const secret = ch.case === "webhook" ? ch.value.secret : undefined;
  check(s, targets, secret);
  const plain =
    ch.case === "webhook" ? ch.value.secret : ch.case === "slack" ? ch.value.webhookUrl : undefined;
  return toWrite(id, s, box, { plain });
}

export const UPDATABLE_PATHS = [
  "display_name",
  "event_types",
  "webhook",
  "webhook.url",
  "webhook.secret",
  "slack",
  "slack.webhook_url",
  "email",
  "email.to",
  "email.subject_template",
  "template",
  "alert_rule",
  "enabled",
] as const;

const bad = (field: string, description: string) =>
  invalidArgument(`${field} ${description}`, [{ field, description }]);

/**
 * Applies an update mask to the current subscription and returns the content to store. Secrets
 * (webhook secret, Slack URL) change only when their path, or their whole channel, is named.
 */
export function writeForUpdate(
  current: SubscriptionRecord,
  input: Subscription,
  paths: readonly string[],
  box: SecretBox,
  targets: TargetPolicy,
): SubscriptionWrite {
  if (paths.length === 0) throw bad("update_mask", "must name at least one field");
  const next = toProto(current);
  let credential: { keep: Buffer | null } | { plain: string | undefined } = { keep: current.credential };
  let secretGiven: string | undefined;
  const sameKind = (kind: string, path: string) => {
    if (next.channel.case !== kind)
      throw bad(`update_mask`, `path ${path} needs a ${kind} channel; name "${kind}" to switch`);
  };
  for (const path of new Set(paths)) {
    const inCh = input.channel;
    switch (path) {
      case "display_name":
        next.displayName = input.displayName;
        break;
      case "event_types":
        next.eventTypes = [...input.eventTypes];
        break;
      case "template":
        next.template = input.template;
        break;
      case "alert_rule":
        next.alertRule = input.alertRule;
        break;
      case "enabled":
        next.enabled = input.enabled ?? true;
        break;
      case "webhook":
      case "slack":
      case "email":
        if (inCh.case !== path) throw bad(`subscription.${path}`, "is required when the mask names it");
        next.channel = clone(SubscriptionSchema, create(SubscriptionSchema, { channel: inCh })).channel;
        if (inCh.case === "webhook") secretGiven = inCh.value.secret;
        credential = {
          plain:
            inCh.case === "webhook"
              ? inCh.value.secret
              : inCh.case === "slack"
                ? inCh.value.webhookUrl
                : undefined,
        };
        break;
      case "webhook.url":
      case "webhook.secret": {
        sameKind("webhook", path);
        const value = inCh.case === "webhook" ? inCh.value : undefined;
        if (next.channel.case === "webhook" && path === "webhook.url")
          next.channel.value.url = value?.url ?? "";
        if (path === "webhook.secret") {
          secretGiven = value?.secret ?? "";
          credential = { plain: secretGiven };
        }
        break;
      }
      case "slack.webhook_url": {
        sameKind("slack", path);
        const url = inCh.case === "slack" ? inCh.value.webhookUrl : "";
        if (next.channel.case === "slack") next.channel.value.webhookUrl = url;
        credential = { plain: url };
        break;
      }
      case "email.to":
      case "email.subject_template":
        sameKind("email", path);
        if (next.channel.case === "email") {
          const v = inCh.case === "email" ? inCh.value : undefined;
          if (path === "email.to") next.channel.value.to = [...(v?.to ?? [])];
          else next.channel.value.subjectTemplate = v?.subjectTemplate ?? "";
        }
        break;
      default:
        throw bad("update_mask", `path "${path}" cannot be updated; allowed: ${UPDATABLE_PATHS.join(", ")}`);
    }
  }
  check(next, targets, secretGiven);
  return toWrite(current.id, next, box, credential);
}
