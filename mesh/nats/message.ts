import type { JsMsg } from "@nats-io/jetstream";

/**
 * Thrown by a handler for a message that can never succeed (undecodable payload, unknown type,
 * failed validation). The message goes to the DLQ at once instead of burning redeliveries.
 */
export class PermanentError extends Error {
  override readonly name = "PermanentError";
}

/** A JetStream message as handlers see it. */
export interface ConsumedMessage {
  subject: string;
  data: Uint8Array;
  /** NATS headers, first value of each. */
  headers: Record<string, string>;
  /** 1 on first delivery; handlers must be idempotent, so use `msgId` to spot repeats. */
  deliveryCount: number;
  /** Stream sequence. */
  seq: number;
  /** The publisher's `Nats-Msg-Id` (the event id for outbox-relayed events). */
  msgId: string | undefined;
}

/** Flattens a JetStream message into the plain shape handlers and dead letters use. */
export function toConsumedMessage(m: JsMsg): ConsumedMessage {
  const headers: Record<string, string> = {};
  for (const key of m.headers?.keys() ?? []) headers[key] = m.headers?.get(key) ?? "";
  return {
    subject: m.subject,
    data: m.data,
    headers,
    deliveryCount: m.info.deliveryCount,
    seq: m.seq,
    msgId: headers["Nats-Msg-Id"],
  };
}
