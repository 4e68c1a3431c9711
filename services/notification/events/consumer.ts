import type { Registry } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import type pg from "pg";
import { decodeEnvelope } from "../../../mesh/events/envelope.js";
import type { Logger } from "../../../mesh/logging.js";
import { type ConsumedMessage, DurableConsumer, PermanentError } from "../../../mesh/nats/consumer.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import { ingestEvents } from "../store/ingest.js";
import { planEvents, type ReceivedEvent } from "./plan.js";
import type { SubscriptionCache } from "./subscription-cache.js";

export interface EventConsumerOptions {
  nc: NatsConnection;
  subjects: Subjects;
  pool: pg.Pool;
  registry: Registry;
  /** The live subscriptions in memory, so events that concern none cost no SQL. */
  subscriptions: SubscriptionCache;
  ackWaitMs: number;
  logger: Logger;
  /** Called after a transaction created deliveries, so the worker sends them without waiting to poll. */
  onDeliveries: () => void;
}

type IngestOptions = Pick<EventConsumerOptions, "pool" | "registry" | "subscriptions" | "onDeliveries">;

function received(msg: ConsumedMessage): ReceivedEvent {
  let envelope: ReturnType<typeof decodeEnvelope>;
  try {
    envelope = decodeEnvelope(msg.data);
  } catch (err) {
    throw new PermanentError(`not an EventEnvelope: ${(err as Error).message}`);
  }
  if (envelope.id === "" || envelope.type === "") throw new PermanentError("envelope without id or type");
  return { envelope, bytes: msg.data };
}

/**
 * Turns messages into deliveries: matched in memory against the subscription index, then, only
 * if something matched, one transaction for all of them (which first verifies the index is still
 * current; see SubscriptionCache). A crash between commit and ack redelivers the messages;
 * ingestion is idempotent, so nothing doubles.
 */
export async function ingestMessages(o: IngestOptions, msgs: readonly ConsumedMessage[]): Promise<void> {
  const byId = new Map<string, ReceivedEvent>();
  for (const m of msgs) {
    const e = received(m);
    byId.set(e.envelope.id, e); // the same event twice in a batch (redelivered meanwhile): once
  }
  const events = [...byId.values()];
  const index = await o.subscriptions.current();
  const planned = planEvents(index, events, o.registry);
  if (planned.length === 0) return;
  const created = await withTransaction(o.pool, async (c) => {
    const fresh = await o.subscriptions.verified(c, index);
    return ingestEvents(c, fresh === index ? planned : planEvents(fresh, events, o.registry));
  });
  if (created > 0) o.onDeliveries();
}

/** The per-message handler: one message, or each message of a batch that failed as a whole. */
export function eventHandler(o: IngestOptions) {
  return (msg: ConsumedMessage): Promise<void> => ingestMessages(o, [msg]);
}

/**
 * Durable consumers over domain events and system events, in batch mode: what arrived together
 * is matched together and written in one transaction, and acked in one write. A batch that fails
 * (a message that is no envelope, a database error) is retried message by message, so retries,
 * backoff and dead letters stay per message. NATS 2.9 allows one filter subject per consumer, so
 * each stream gets its own durable; replicas sharing a durable share the work.
 */
export function createEventConsumers(o: EventConsumerOptions): DurableConsumer[] {
  const handler = eventHandler(o);
  const batchHandler = (msgs: ConsumedMessage[]) => ingestMessages(o, msgs);
  const make = (durable: string, stream: string, filter: string) =>
    new DurableConsumer({
      nc: o.nc,
      stream,
      durable,
      filterSubjects: [filter],
      dlqSubject: o.subjects.dlq(durable),
      handler,
      batchHandler,
      // Gathering trickling events for up to 20 ms turns many one-event batches into few.
      batchLingerMs: 20,
      ackWaitMs: o.ackWaitMs,
      maxDeliver: 10,
      onError: (err, msg) =>
        o.logger.warn({ err, subject: msg?.subject, seq: msg?.seq }, "event handling failed"),
    });
  const { streams, filters } = o.subjects;
  return [
    make("notification-events", streams.events, filters.events),
    make("notification-system", streams.system, filters.system),
  ];
}
