import type { Registry } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import type pg from "pg";
import { decodeEnvelope } from "../../../mesh/events/envelope.js";
import type { Logger } from "../../../mesh/logging.js";
import { type ConsumedMessage, DurableConsumer, PermanentError } from "../../../mesh/nats/consumer.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import { ingestEvent } from "../store/ingest.js";
import { viewOf } from "./event-context.js";

export interface EventConsumerOptions {
  nc: NatsConnection;
  subjects: Subjects;
  pool: pg.Pool;
  registry: Registry;
  ackWaitMs: number;
  logger: Logger;
  /** Called after a transaction created deliveries, so the worker sends them without waiting to poll. */
  onDeliveries: () => void;
}

/**
 * Turns one envelope into deliveries in one transaction, then lets the consumer ack. A crash
 * between commit and ack redelivers the message; ingestion is idempotent, so nothing doubles.
 */
export function eventHandler(o: Pick<EventConsumerOptions, "pool" | "registry" | "onDeliveries">) {
  return async (msg: ConsumedMessage): Promise<void> => {
    let envelope: ReturnType<typeof decodeEnvelope>;
    try {
      envelope = decodeEnvelope(msg.data);
    } catch (err) {
      throw new PermanentError(`not an EventEnvelope: ${(err as Error).message}`);
    }
    if (envelope.id === "" || envelope.type === "") throw new PermanentError("envelope without id or type");
    const view = viewOf(envelope, o.registry);
    const created = await withTransaction(o.pool, (c) => ingestEvent(c, view, msg.data));
    if (created > 0) o.onDeliveries();
  };
}

/**
 * Durable consumers over domain events and system events. NATS 2.9 allows one filter subject
 * per consumer, so each stream gets its own durable; replicas sharing a durable share the work.
 */
export function createEventConsumers(o: EventConsumerOptions): DurableConsumer[] {
  const handler = eventHandler(o);
  const make = (durable: string, stream: string, filter: string) =>
    new DurableConsumer({
      nc: o.nc,
      stream,
      durable,
      filterSubjects: [filter],
      dlqSubject: o.subjects.dlq(durable),
      handler,
      ackWaitMs: o.ackWaitMs,
      maxDeliver: 10,
      concurrency: 4,
      onError: (err, msg) =>
        o.logger.warn({ err, subject: msg?.subject, seq: msg?.seq }, "event handling failed"),
    });
  const { streams, filters } = o.subjects;
  return [
    make("notification-events", streams.events, filters.events),
    make("notification-system", streams.system, filters.system),
  ];
}
