import type { NatsConnection } from "@nats-io/transport-node";
import type pg from "pg";
import type { AuditRecord } from "../../../gen/codex/audit/v1/audit_record_pb.js";
import { decodeEnvelope } from "../../../mesh/events/envelope.js";
import type { Logger } from "../../../mesh/logging.js";
import { type ConsumedMessage, DurableConsumer, PermanentError } from "../../../mesh/nats/consumer.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";
import { draftFromEnvelope, InvalidEnvelopeError } from "../domain/envelope-record.js";
import { eventRegistry } from "../domain/event-registry.js";
import { type AppendResult, appendRecord, appendRecords } from "../store/append.js";

/** Options for {@link AuditConsumer}. */
export interface AuditConsumerOptions {
  nc: NatsConnection;
  pool: pg.Pool;
  subjects: Subjects;
  logger: Logger;
  /** Deliveries before an event that keeps failing is dead-lettered. */
  maxDeliver: number;
  ackWaitMs: number;
  /** Called after each event is handled (tests and metrics). */
  onAppended?: (result: AppendResult, msg: ConsumedMessage) => void;
}

/** Durable names: the server remembers the trail's progress under them across restarts. */
export const DURABLES = { events: "audit", system: "audit-system" } as const;

/**
 * Feeds every domain event (`<prefix>.events.>`) and system event (`<prefix>.system.>`) into the
 * trail. Two durable consumers, because the streams differ and NATS 2.9 allows one filter
 * subject per consumer; both append through the same chain lock, so the trail stays one
 * linear chain.
 *
 * Batches: each consumer hands over what arrived together (up to 256 events), appended in one
 * transaction in stream order and acked together, so the cost of a transaction and of acking
 * is shared by the batch instead of paid per event. Batches of one consumer run one at a time,
 * so a stream's events are recorded in stream order.
 *
 * At-least-once delivery plus the idempotent append (by event id, under the chain lock) gives
 * exactly-once records: a redelivery, a duplicate publish that escaped JetStream's dedupe
 * window, or a restart between append and ack all find the event already recorded and ack it.
 * An undecodable message can never succeed and is dead-lettered at once: its batch records the
 * others and hands it back to the consumer, whose per-message path dead-letters it. Every other
 * failure (database down) fails the batch; the per-message path then retries each event with
 * backoff up to `maxDeliver` times, kept high on purpose.
 */
export class AuditConsumer {
  readonly #consumers: DurableConsumer[];
  readonly #o: AuditConsumerOptions;

  constructor(opts: AuditConsumerOptions) {
    this.#o = opts;
    const { subjects } = opts;
    this.#consumers = (["events", "system"] as const).map(
      (kind) =>
        new DurableConsumer({
          nc: opts.nc,
          stream: subjects.streams[kind],
          durable: DURABLES[kind],
          filterSubjects: [subjects.filters[kind]],
          dlqSubject: subjects.dlq(DURABLES[kind]),
          batchHandler: (msgs) => this.#handleBatch(msgs),
          // A batch costs four round trips whatever its size; when events trickle in, waiting up
          // to 50 ms to gather them costs the trail nothing that matters and saves most of those.
          batchLingerMs: 50,
          handler: (msg) => this.#handle(msg),
          maxDeliver: opts.maxDeliver,
          ackWaitMs: opts.ackWaitMs,
          onError: (err, msg) =>
            opts.logger.warn(
              { err, subject: msg?.subject, seq: msg?.seq },
              "audit consumer: event not recorded",
            ),
        }),
    );
  }

  async start(): Promise<void> {
    for (const c of this.#consumers) await c.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.#consumers.map((c) => c.stop()));
  }

  /** Messages not yet recorded (both consumers), for the lag metric. */
  async pending(): Promise<number> {
    const counts = await Promise.all(this.#consumers.map((c) => c.pending()));
    return counts.reduce((a, b) => a + b, 0);
  }

  /**
   * Appends the decodable events of a batch in one transaction; returns the others, for the
   * consumer's per-message path to dead-letter with their reason.
   */
  async #handleBatch(msgs: ConsumedMessage[]): Promise<ConsumedMessage[]> {
    const drafts: AuditRecord[] = [];
    const good: ConsumedMessage[] = [];
    const bad: ConsumedMessage[] = [];
    for (const msg of msgs) {
      try {
        drafts.push(draftOf(msg));
        good.push(msg);
      } catch {
        bad.push(msg);
      }
    }
    const results = await appendRecords(this.#o.pool, drafts);
    for (const [i, result] of results.entries()) {
      this.#appended(result, good[i] as ConsumedMessage, drafts[i] as AuditRecord);
    }
    return bad;
  }

  /** The per-message path: a failed batch's events, and those a batch could not record. */
  async #handle(msg: ConsumedMessage): Promise<void> {
    const draft = draftOf(msg);
    this.#appended(await appendRecord(this.#o.pool, draft), msg, draft);
  }

  #appended(result: AppendResult, msg: ConsumedMessage, draft: AuditRecord): void {
    if (result.duplicate) {
      this.#o.logger.debug({ eventId: draft.eventId, sequence: result.sequence }, "event already recorded");
    }
    this.#o.onAppended?.(result, msg);
  }
}

/** The record draft of a message; a {@link PermanentError} when it can never be recorded. */
function draftOf(msg: ConsumedMessage): AuditRecord {
  try {
    return draftFromEnvelope(decodeEnvelope(msg.data), eventRegistry);
  } catch (err) {
    if (err instanceof InvalidEnvelopeError) throw new PermanentError(err.message, { cause: err });
    throw new PermanentError(`undecodable event envelope on ${msg.subject}`, { cause: err });
  }
}
