import type { JetStreamClient } from "@nats-io/jetstream";
import type { ConsumedMessage } from "./message.js";
import { type PublishResult, publish } from "./publisher.js";

/**
 * Headers a dead letter carries next to the original message's own headers, so an operator (or
 * a replay tool) can see where it came from and why it was parked without decoding the payload.
 */
export const DlqHeaders = {
  /** Subject the message was originally published on; replay publishes it back there. */
  subject: "Codex-Dlq-Subject",
  /** Text of the last handler error (single line, truncated). */
  error: "Codex-Dlq-Error",
  /** Durable name of the consumer that gave up. */
  consumer: "Codex-Dlq-Consumer",
  /** Stream the original lives in, and its sequence there. */
  stream: "Codex-Dlq-Stream",
  streamSeq: "Codex-Dlq-Stream-Seq",
  /** How many times the message had been delivered to this consumer. */
  deliveryCount: "Codex-Dlq-Delivery-Count",
  /** The original `Nats-Msg-Id`, which cannot be reused on the dead letter itself. */
  msgId: "Codex-Dlq-Msg-Id",
} as const;

const MAX_ERROR_CHARS = 1_000;

/** NATS header values are single lines; keep the first part of the error, newlines flattened. */
function errorText(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.replace(/[\r\n]+/g, " ").slice(0, MAX_ERROR_CHARS);
}

/** Where a dead letter goes and who is sending it. */
export interface DeadLetter {
  dlqSubject: string;
  consumer: string;
  stream: string;
  message: ConsumedMessage;
  error: unknown;
}

/**
 * Copies a message the consumer gave up on to its DLQ subject.
 *
 * The dead letter gets its own msg id, `<stream>:<seq>:<consumer>`: re-sending after a crash is
 * deduplicated, while two consumers parking the same message both keep their copy (reusing the
 * original id would make the DLQ stream drop the second one).
 */
export function publishDeadLetter(js: JetStreamClient, dl: DeadLetter): Promise<PublishResult> {
  const { message } = dl;
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(message.headers)) {
    if (key.toLowerCase() !== "nats-msg-id") headers[key] = value;
  }
  headers[DlqHeaders.subject] = message.subject;
  headers[DlqHeaders.error] = errorText(dl.error);
  headers[DlqHeaders.consumer] = dl.consumer;
  headers[DlqHeaders.stream] = dl.stream;
  headers[DlqHeaders.streamSeq] = String(message.seq);
  headers[DlqHeaders.deliveryCount] = String(message.deliveryCount);
  if (message.msgId !== undefined) headers[DlqHeaders.msgId] = message.msgId;
  return publish(js, dl.dlqSubject, message.data, {
    msgId: `${dl.stream}:${message.seq}:${dl.consumer}`,
    headers,
  });
}
