import type pg from "pg";
import { afterCommit, schemaOf } from "../postgres/pool.js";

/**
 * Wakes the outbox relays of this process when a transaction that staged outbox rows commits.
 *
 * Why not LISTEN/NOTIFY, which the relay used before: Postgres signals every backend that
 * LISTENs in the same database on every NOTIFY, whatever its channel, and all our services share
 * one database (a schema each). At 100 runs/s that was seven backend wake-ups per notifying
 * commit, and dropping the NOTIFY of the agent manager alone took a fifth of Postgres's CPU away
 * (dispatch bench). The rows a process stages are published by its own relay, so a wake-up in
 * the process is enough. Rows whose writer died before its relay published them (or rows staged
 * by a process without a relay) are found by the relay's poll, a second at most by default.
 */
const relays = new Map<string, Set<() => void>>();

/** Calls `wake` whenever outbox rows of `schema` commit in this process; returns the unsubscribe. */
export function onOutboxCommitted(schema: string, wake: () => void): () => void {
  let set = relays.get(schema);
  if (!set) {
    set = new Set();
    relays.set(schema, set);
  }
  set.add(wake);
  return () => {
    set.delete(wake);
    if (set.size === 0) relays.delete(schema);
  };
}

function wakeRelays(schema: string): void {
  for (const wake of relays.get(schema) ?? []) wake();
}

/**
 * Records that `client` staged outbox rows: the relays of its schema are woken when its
 * transaction (a {@link withTransaction}) commits, never for one that rolls back. Outside such a
 * transaction (autocommit) the rows are committed already, and the relays are woken now.
 */
export function outboxStaged(client: pg.ClientBase): void {
  const schema = schemaOf(client);
  if (schema === undefined) return; // not one of our pools: the poll finds the rows
  if (!afterCommit(client, () => wakeRelays(schema))) wakeRelays(schema);
}
