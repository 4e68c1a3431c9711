import type pg from "pg";
import { outboxStaged } from "./wake.js";

/** One message to publish, as stored in the outbox. */
export interface OutboxMessage {
  /** UUID; becomes the JetStream `Nats-Msg-Id`, so it must be unique per message. */
  id: string;
  /** NATS subject, e.g. from `subjectsFor(prefix).event(...)`. */
  subject: string;
  payload: Uint8Array;
  /** NATS headers to send with it (trace context, event type, ...). */
  headers?: Record<string, string>;
}

/**
 * Stores a message in the caller's schema's `outbox` table; the relays of this process are woken
 * when the transaction commits (wake.ts).
 *
 * Call it with the client of the transaction that makes the state change the message announces
 * (see `withTransaction`): the row commits or rolls back with the change, which is the whole
 * point of the transactional outbox (no event for a change that did not happen, no change whose
 * event is lost). The relay is woken at commit, never for a rolled-back row.
 *
 * @returns the row's `seq` (publication order).
 */
export async function enqueueOutbox(client: pg.ClientBase, msg: OutboxMessage): Promise<bigint> {
  const { rows } = await client.query<{ seq: bigint | string }>(
    "INSERT INTO outbox (id, subject, payload, headers) VALUES ($1, $2, $3, $4) RETURNING seq",
    [
      msg.id,
      msg.subject,
      Buffer.from(msg.payload.buffer, msg.payload.byteOffset, msg.payload.byteLength),
      msg.headers ?? {},
    ],
  );
  outboxStaged(client);
  // int8 is a bigint on pools from createPool, a string on plain pg clients.
  return BigInt(rows[0]?.seq ?? 0);
}
