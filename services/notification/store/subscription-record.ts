import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type AlertKind,
  ChannelType,
  type Subscription,
  SubscriptionSchema,
} from "../../../gen/codex/notification/v1/subscription_pb.js";

/** Non-secret channel settings as stored (jsonb). Secrets live sealed in `credential`. */
export type StoredChannel =
  | { type: "webhook"; url: string }
  | { type: "slack"; redactedUrl: string }
  | { type: "email"; to: string[]; subjectTemplate: string };

export interface StoredAlertRule {
  kind: AlertKind;
  threshold: number;
  windowMs: number;
  /** Defaults to the window. */
  cooldownMs: number;
}

/** A subscription row. */
export interface SubscriptionRecord {
  seq: bigint;
  id: string;
  projectId: string;
  displayName: string;
  eventTypes: string[];
  channel: StoredChannel;
  /** Sealed webhook secret or Slack URL (see credentialAad). */
  credential: Buffer | null;
  template: string;
  alertRule: StoredAlertRule | null;
  enabled: boolean;
  createdBy: string;
  createTime: Date;
  updateTime: Date;
  version: bigint;
  deleteTime: Date | null;
}

/** Row as pg returns it. */
export interface SubscriptionRow {
  seq: bigint;
  id: string;
  project_id: string;
  display_name: string;
  event_types: string[];
  channel_type: string;
  channel: Record<string, unknown>;
  credential: Buffer | null;
  template: string;
  alert_rule: StoredAlertRule | null;
  enabled: boolean;
  created_by: string;
  create_time: Date;
  update_time: Date;
  version: bigint;
  delete_time: Date | null;
}

export function recordFromRow(r: SubscriptionRow): SubscriptionRecord {
  return {
    seq: r.seq,
    id: r.id,
    projectId: r.project_id,
    displayName: r.display_name,
    eventTypes: r.event_types,
    channel: { ...r.channel, type: r.channel_type } as StoredChannel,
    credential: r.credential,
    template: r.template,
    alertRule: r.alert_rule,
    enabled: r.enabled,
    createdBy: r.created_by,
    createTime: r.create_time,
    updateTime: r.update_time,
    version: r.version,
    deleteTime: r.delete_time,
  };
}

/** Associated data binding a sealed credential to its subscription and purpose. */
export function credentialAad(subscriptionId: string, kind: "webhook" | "slack"): string {
  return `${subscriptionId}:${kind === "webhook" ? "webhook.secret" : "slack.webhook_url"}`;
}

/** "https://hooks.slack.com/services/T0/B0/XXXX" → "https://hooks.slack.com/services/T0/B0/****". */
export function redactSlackUrl(raw: string): string {
  try {
    const u = new URL(raw);
    const segments = u.pathname.split("/");
    const last = segments.length - 1;
    if (last >= 1 && segments[last] !== "") segments[last] = "****";
    else segments.push("****");
    return `${u.protocol}//${u.host}${segments.join("/")}`;
  } catch {
    return "****";
  }
}

/** Opaque etag of a version: a caller can compare it but not forge "the next" one. */
export function etagOf(id: string, version: bigint): string {
  const digest = createHash("sha256").update(`subscription\0${id}\0${version}`).digest("base64url");
  return `"${digest.slice(0, 22)}"`;
}

export function channelTypeOf(channel: StoredChannel): ChannelType {
  return channel.type === "webhook"
    ? ChannelType.WEBHOOK
    : channel.type === "slack"
      ? ChannelType.SLACK
      : ChannelType.EMAIL;
}

/** Non-secret target for events: the webhook URL, "slack", or the recipients. */
export function channelTarget(channel: StoredChannel): string {
  if (channel.type === "webhook") return channel.url;
  if (channel.type === "slack") return "slack";
  return channel.to.join(", ");
}

function msDuration(ms: number) {
  return { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

/** The API view: secrets never leave, the Slack URL only redacted. */
export function toProto(r: SubscriptionRecord): Subscription {
  const ch = r.channel;
  const channel: Subscription["channel"] =
    ch.type === "webhook"
      ? {
          case: "webhook",
          value: {
            $typeName: "codex.notification.v1.WebhookChannel",
            url: ch.url,
            secret: "",
            hasSecret: r.credential !== null,
          },
        }
      : ch.type === "slack"
        ? {
            case: "slack",
            value: { $typeName: "codex.notification.v1.SlackChannel", webhookUrl: ch.redactedUrl },
          }
        : {
            case: "email",
            value: {
              $typeName: "codex.notification.v1.EmailChannel",
              to: ch.to,
              subjectTemplate: ch.subjectTemplate,
            },
          };
  return create(SubscriptionSchema, {
    id: r.id,
    projectId: r.projectId,
    displayName: r.displayName,
    eventTypes: r.eventTypes,
    channel,
    template: r.template,
    ...(r.alertRule
      ? {
          alertRule: {
            kind: r.alertRule.kind,
            threshold: r.alertRule.threshold,
            window: msDuration(r.alertRule.windowMs),
            cooldown: msDuration(r.alertRule.cooldownMs),
          },
        }
      : {}),
    enabled: r.enabled,
    createTime: timestampFromDate(r.createTime),
    updateTime: timestampFromDate(r.updateTime),
    createdBy: r.createdBy,
    etag: etagOf(r.id, r.version),
  });
}
