import type { Registry } from "@bufbuild/protobuf";
import type { EventEnvelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import type { SecretBox } from "../../../mesh/crypto/secret-box.js";
import type { ChannelTarget, OutboundNotification } from "../channels/types.js";
import { renderNotification } from "../domain/notification-render.js";
import { type AlertView, templateContext, viewOf } from "../events/event-context.js";
import { credentialAad, type SubscriptionRecord } from "../store/subscription-record.js";

/**
 * Opens the subscription's sealed credential into a send target. The plaintext lives only in
 * this object for the duration of one send.
 */
export function targetOf(sub: SubscriptionRecord, box: SecretBox): ChannelTarget {
  const ch = sub.channel;
  if (ch.type === "webhook") {
    const secret =
      sub.credential === null ? undefined : box.openText(sub.credential, credentialAad(sub.id, "webhook"));
    return { kind: "webhook", url: ch.url, secret };
  }
  if (ch.type === "slack") {
    if (sub.credential === null) throw new Error("slack subscription has no stored webhook URL");
    return { kind: "slack", url: box.openText(sub.credential, credentialAad(sub.id, "slack")) };
  }
  return { kind: "email", to: ch.to };
}

/** Renders what to send for one event to one subscription, with its current templates. */
export function prepareNotification(
  sub: SubscriptionRecord,
  envelope: EventEnvelope,
  alert: AlertView | null | undefined,
  deliveryKey: string,
  registry: Registry,
  consoleUrl: string | undefined,
): OutboundNotification {
  const ctx = templateContext(
    viewOf(envelope, registry),
    { id: sub.id, displayName: sub.displayName, projectId: sub.projectId },
    alert ?? undefined,
  );
  const rendered = renderNotification(
    {
      kind: sub.channel.type,
      template: sub.template,
      subjectTemplate: sub.channel.type === "email" ? sub.channel.subjectTemplate : "",
      consoleUrl,
    },
    ctx,
  );
  return {
    deliveryKey,
    eventId: envelope.id,
    eventType: envelope.type,
    body: rendered.body,
    subject: rendered.subject,
    contentType: rendered.contentType,
  };
}
