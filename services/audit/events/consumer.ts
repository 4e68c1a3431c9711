import type { NatsConnection } from "@nats-io/transport-node";
import type pg from "pg";
import { decodeEnvelope } from "../../../mesh/events/envelope.js";
import type { Logger } from "../../../mesh/logging.js";
import { type ConsumedMessage, DurableConsumer, PermanentError } from "../../../mesh/nats/consumer.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";
import { draftFromEnvelope, InvalidEnvelopeError } from "../domain/envelope-record.js";
import { eventRegistry } from "../domain/event-registry.js";
import { type AppendResult, appendRecord } from "../store/append.js";

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
 * linear chain. Each consumer handles one message at a time, so a stream's events are recorded
 * in stream order.
 *
 * At-least-once delivery plus the idempotent append (by event id, under the chain lock) gives
 * exactly-once records: a redelivery, a duplicate publish that escaped JetStream's dedupe
 * window, or a restart between append and ack all find the event already recorded and ack it.
 * An undecodable message can never succeed and is dead-lettered at once; every other failure
 * (database down) is retried with backoff up to `maxDeliver` times, kept high on purpose.
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

  async #handle(msg: ConsumedMessage): Promise<void> {
    let draft: ReturnType<typeof draftFromEnvelope>;
    try {
      draft = draftFromEnvelope(decodeEnvelope(msg.data), eventRegistry);
    } catch (err) {
      if (err instanceof InvalidEnvelopeError) throw new PermanentError(err.message, { cause: err });
      throw new PermanentError(`undecodable event envelope on ${msg.subject}`, { cause: err });
    }
    const result = await appendRecord(this.#o.pool, draft);
    if (result.duplicate) {
      this.#o.logger.debug({ eventId: draft.eventId, sequence: result.sequence }, "event already recorded");
    }
    this.#o.onAppended?.(result, msg);
  }
}
