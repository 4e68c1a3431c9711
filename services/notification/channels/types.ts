import type { AttemptResult } from "../domain/retry-policy.js";

/** Where one notification goes, with its credential opened (only ever held in memory). */
export type ChannelTarget =
  | { kind: "webhook"; url: string; secret: string | undefined }
  | { kind: "slack"; url: string }
  | { kind: "email"; to: readonly string[] };

/** One rendered notification. */
export interface OutboundNotification {
  /** Stable across the attempts of one event to one subscription (X-Codex-Delivery-Id). */
  deliveryKey: string;
  eventId: string;
  eventType: string;
  body: string;
  /** Email subject; "" for other channels. */
  subject: string;
  /** Webhook body content type. */
  contentType: string;
}

/** An attempt's result plus its latency (time from sending to the answer). */
export interface SendResult extends AttemptResult {
  latencyMs: number;
}

/** Sends one notification. Resolves for every answer or failure; rejects only when `signal` aborts. */
export interface Sender {
  send(target: ChannelTarget, n: OutboundNotification, signal: AbortSignal): Promise<SendResult>;
  close(): Promise<void>;
}

/** Thrown when the caller aborted (shutdown): no answer was seen, so nothing is recorded. */
export class SendAborted extends Error {
  override readonly name = "SendAborted";
}

/** Header names every webhook request carries (WebhookChannel contract). */
export const Headers = {
  eventId: "X-Codex-Event-Id",
  eventType: "X-Codex-Event-Type",
  deliveryId: "X-Codex-Delivery-Id",
} as const;
