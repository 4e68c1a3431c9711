import type { JetStreamClient, JetStreamPublishOptions } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";

/** Options for {@link publish}. */
export interface PublishOptions {
  /**
   * Sent as `Nats-Msg-Id`. Publishing the same id again within the stream's duplicate window is
   * acknowledged but not stored, which is what makes retries and outbox re-publication safe.
   */
  msgId: string;
  /** Extra NATS headers, e.g. `traceparent`. */
  headers?: Record<string, string>;
  /** How long to wait for the stream's acknowledgement (default 5 s). */
  timeoutMs?: number;
}

/** What JetStream answered. */
export interface PublishResult {
  /** Stream that stored the message. */
  stream: string;
  /** Stream sequence of the message (of the original when `duplicate`). */
  seq: number;
  /** True when the server had already stored this msgId and dropped this copy. */
  duplicate: boolean;
}

const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * Publishes one message to JetStream and waits for the stream's acknowledgement.
 *
 * Why a wrapper: it makes the message id mandatory. A JetStream publish without `Nats-Msg-Id`
 * cannot be retried safely, because a lost acknowledgement and a lost message look the same to
 * the publisher; with it, "retry until acknowledged" is exactly-once in the stream. Rejects when
 * no stream captures the subject or the ack times out; the caller decides whether to retry.
 */
export async function publish(
  js: JetStreamClient,
  subject: string,
  data: Uint8Array,
  opts: PublishOptions,
): Promise<PublishResult> {
  if (opts.msgId === "") throw new Error(`publish to ${subject}: msgId must not be empty`);
  const options: Partial<JetStreamPublishOptions> = {
    msgID: opts.msgId,
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  };
  if (opts.headers !== undefined) {
    const h = natsHeaders();
    for (const [key, value] of Object.entries(opts.headers)) h.set(key, value);
    options.headers = h;
  }
  const ack = await js.publish(subject, data, options);
  return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
}
