/**
 * One transaction for the rare changes (registration, drain, cancel, info requests): the same
 * context as a group-commit batch, so the batched statements can be reused one item at a time,
 * with events staged in the outbox before COMMIT.
 */
import type pg from "pg";
import type { EventEnvelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";
import { outboxStaged } from "../../../mesh/outbox/wake.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import { outboxStatement } from "../events/outbox-batch.js";
import type { BatchContext, BatchKind } from "./group-commit.js";

export async function inTx<T>(
  pool: pg.Pool,
  subjects: Subjects,
  fn: (ctx: BatchContext) => Promise<T>,
): Promise<T> {
  const events: EventEnvelope[] = [];
  return withTransaction(
    pool,
    async (client) => {
      const result = await fn({ client, now: new Date(), stage: (e) => events.push(e) });
      if (events.length > 0) outboxStaged(client); // the relay is woken at COMMIT
      return result;
    },
    { last: () => outboxStatement(subjects, events) },
  );
}

/** Applies one item of a batch kind inside `ctx`, throwing its refusal. */
export async function applyOne<P, R>(ctx: BatchContext, kind: BatchKind<P, R>, item: P): Promise<R> {
  const [outcome] = await kind.apply(ctx, [item]);
  if (!outcome) throw new Error(`${kind.name}: no outcome`);
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}
