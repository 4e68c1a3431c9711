import { SIGNATURE_HEADER, signatureHeader } from "../domain/signing.js";
import { type HttpPostOptions, httpPost } from "./http-post.js";
import { Headers, type OutboundNotification, type SendResult } from "./types.js";

/**
 * WebhookChannel: POST the rendered body with the event and delivery ids and, when the
 * subscription has a secret, `X-Codex-Signature`. The signature is computed per attempt (its
 * timestamp must be fresh), the delivery id is the same on every attempt so receivers can
 * drop repeats — delivery to the receiver is at-least-once.
 */
export function sendWebhook(
  url: string,
  secret: string | undefined,
  n: OutboundNotification,
  signal: AbortSignal,
  opts: HttpPostOptions,
  nowSec: number = Math.floor(Date.now() / 1000),
): Promise<SendResult> {
  const headers: Record<string, string> = {
    "Content-Type": n.contentType,
    "User-Agent": "codex-notification/1",
    [Headers.eventId]: n.eventId,
    [Headers.eventType]: n.eventType,
    [Headers.deliveryId]: n.deliveryKey,
  };
  if (secret !== undefined && secret !== "")
    headers[SIGNATURE_HEADER] = signatureHeader(secret, n.body, nowSec);
  return httpPost(url, n.body, headers, signal, opts);
}
