import pg from "pg";
import { PreparingClient } from "./statements.js";

/**
 * Schema names we accept: lowercase, unquoted-identifier safe, at most 63 bytes (PostgreSQL's
 * NAMEDATALEN - 1). Restricting the alphabet means a schema name can be interpolated into SQL
 * (`SET search_path`, `CREATE SCHEMA`, `LISTEN`) without any escaping subtleties.
 */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

const INT8_OID: number = 20;
const INT8_ARRAY_OID: number = 1016;

/**
 * Checks a schema name and returns it double-quoted, ready to splice into SQL.
 *
 * Identifiers cannot be bound as query parameters, so every place that names a schema goes
 * through this one check instead of hand-rolled quoting.
 *
 * @throws Error naming the offending value when it does not match `^[a-z_][a-z0-9_]{0,62}$`.
 */
export function quoteSchema(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) {
    throw new Error(
      `invalid schema name ${JSON.stringify(schema)}: expected /^[a-z_][a-z0-9_]{0,62}$/ (lowercase letters, digits, underscore)`,
    );
  }
  return `"${schema}"`;
}

/**
 * int8 (bigint, bigserial, count(*)) is parsed to a JavaScript `bigint`.
 *
 * Why: pg's default returns a string, which silently concatenates instead of adding and sorts
 * lexically; `Number` loses precision above 2^53. `bigint` is exact, the compiler refuses to mix
 * it with `number`, and it matches how protobuf-es represents int64/uint64 fields, so sequence
 * numbers and aggregate versions flow from rows into messages unchanged. Cast in SQL
 * (`count(*)::int`) where a small `number` is wanted. The parser is installed per pool, not on
 * pg's global registry, so other code in the process keeps pg's defaults.
 */
const typeParsers: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (format !== "binary" && oid === INT8_OID) return (value: string) => BigInt(value);
    if (format !== "binary" && oid === INT8_ARRAY_OID) {
      const parseArray: (value: string) => unknown = pg.types.getTypeParser(INT8_ARRAY_OID);
      return (value: string) => toBigInts(parseArray(value));
    }
    return format === undefined ? pg.types.getTypeParser(oid) : pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig["getTypeParser"],
};

/** pg parses int8[] to (nested) arrays of strings and nulls; convert the leaves. */
function toBigInts(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toBigInts);
  return typeof value === "string" ? BigInt(value) : value;
}

/** Options for {@link createPool}. */
export interface PoolOptions {
  /** Connection string, e.g. `postgres://root@127.0.0.1:5432/test`. */
  url: string;
  /** The service's own schema; every connection's `search_path` is pinned to it. */
  schema: string;
  /** Maximum connections (pg default 10). */
  max?: number;
  /** Shown in `pg_stat_activity.application_name`, so a DBA can tell services apart. */
  applicationName?: string;
  /**
   * Called when an idle pooled connection fails (server restart, network drop). pg emits these
   * as `error` events that would crash the process if nobody listened; the pool discards the
   * broken client and opens a new one on the next checkout, so the event is only worth logging.
   */
  onError?: (err: Error) => void;
  /**
   * Pipelined connections (default true): a statement is written without waiting for the answer
   * to the one before, so {@link withTransaction} sends BEGIN with the first statement and COMMIT
   * with the last. Sequential use (await each query) behaves exactly as without.
   */
  pipeline?: boolean;
  /**
   * Statements with parameters are prepared once per connection, named by their text (default
   * true; see statements.ts): Postgres parses and plans them once instead of on every execution.
   */
  prepare?: boolean;
}

/**
 * Creates a pg pool whose connections all run with `search_path` set to `"<schema>"`.
 *
 * Why: database-per-service is enforced by schema-per-service on a shared server. Pinning the
 * search path when the connection is opened lets service SQL use unqualified table names and
 * makes a query that forgot to qualify a table land in the service's own schema rather than
 * `public`; because the setting travels in the startup packet, no statement can ever run on a
 * connection before it applies. int8 values come back as `bigint` (see `typeParsers` above).
 * Transaction-pooling proxies (PgBouncer) would drop the setting: connect directly.
 */
export function createPool(opts: PoolOptions): pg.Pool {
  // Sent in the startup packet, i.e. the server applies `SET search_path TO "<schema>"` before the
  // connection accepts its first statement. Issuing the SET from the pool's `connect` event
  // instead would race the caller's first query (pg 8 warns about it and pg 9 will refuse it).
  // plan_cache_mode: prepared statements are still planned for their actual parameters every
  // time (see statements.ts); only parsing and analysis are saved.
  const options = `-c search_path=${quoteSchema(opts.schema)} -c plan_cache_mode=force_custom_plan`;
  const config: pg.PoolConfig = { connectionString: opts.url, types: typeParsers, options };
  if (opts.max !== undefined) config.max = opts.max;
  if (opts.applicationName !== undefined) config.application_name = opts.applicationName;
  // pg >= 8.20 (not in @types/pg yet): pipeline mode, passed on to every client of the pool.
  if (opts.pipeline ?? true) (config as { pipeline?: boolean }).pipeline = true;
  if (opts.prepare ?? true) config.Client = PreparingClient;
  const pool = new pg.Pool(config);
  pool.on("connect", (client) => clientSchemas.set(client, opts.schema));
  const onError = opts.onError ?? (() => {});
  pool.on("error", onError);
  return pool;
}

/** The schema each client of a pool from {@link createPool} is pinned to. */
const clientSchemas = new WeakMap<pg.ClientBase, string>();

/** The schema `client`'s search_path is pinned to; undefined for clients not from createPool. */
export function schemaOf(client: pg.ClientBase): string | undefined {
  return clientSchemas.get(client);
}

/** Callbacks waiting for the COMMIT of the {@link withTransaction} a client is in. */
const commitHooks = new WeakMap<pg.ClientBase, (() => void)[]>();

/**
 * Runs `fn` after the transaction `client` is in (a {@link withTransaction}) commits, and never
 * if it rolls back. Returns false, and does nothing, when `client` is in no such transaction.
 * For work that must only follow a durable change (waking the outbox relay, say). A throwing
 * `fn` is ignored: the transaction is committed either way.
 */
export function afterCommit(client: pg.ClientBase, fn: () => void): boolean {
  const hooks = commitHooks.get(client);
  if (hooks === undefined) return false;
  hooks.push(fn);
  return true;
}

/** Whether a client writes statements without waiting for earlier answers (see PoolOptions). */
export function isPipelined(client: pg.ClientBase): boolean {
  return (client as { pipeline?: boolean }).pipeline === true;
}

/**
 * Holds a pipelined client's writes until the returned function is called, so statements sent
 * in between leave in one write (one syscall, one wake-up of the server) instead of one each.
 * pg's Connection writes to `connection.stream`, a net.Socket; a client without one is left alone.
 */
function cork(client: pg.ClientBase): () => void {
  if (!isPipelined(client)) return () => {};
  const stream = (client as { connection?: { stream?: { cork?: () => void; uncork?: () => void } } })
    .connection?.stream;
  if (typeof stream?.cork !== "function" || typeof stream.uncork !== "function") return () => {};
  stream.cork();
  return () => stream.uncork?.();
}

/** Options for {@link withTransaction}. */
export interface TransactionOptions<T> {
  /**
   * A last statement built from `fn`'s result, sent with COMMIT in one flight on a pipelined
   * client (one round trip less). Its failure rolls the transaction back, as if `fn` threw.
   */
  last?: (result: T) => pg.QueryConfig | undefined;
}

/**
 * Runs `fn` inside BEGIN/COMMIT on one pooled client, rolling back if `fn` (or COMMIT) throws.
 *
 * Why: the outbox pattern and every multi-statement write need "all or nothing" on a single
 * connection, and forgetting `release()` on an error path leaks a connection until the pool
 * starves. The client is always released; if even ROLLBACK fails the connection is in an
 * unknown state, so it is destroyed instead of being returned to the pool.
 *
 * On a pipelined client (the default, see {@link createPool}) BEGIN is not awaited: it travels
 * with `fn`'s first statement, and `opts.last` travels with COMMIT, so a transaction of n
 * statements costs n round trips instead of n + 2. BEGIN is still checked before COMMIT; it only
 * fails with its connection, which fails the statements behind it too. A COMMIT that finds the
 * transaction aborted answers ROLLBACK without an error: that is checked, and throws.
 */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  opts: TransactionOptions<T> = {},
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const hooks: (() => void)[] = [];
  commitHooks.set(client, hooks);
  try {
    let result: T;
    // Pipelined: BEGIN and the statements fn sends before its first await leave in one write.
    const uncork = cork(client);
    const begin = client.query("BEGIN");
    if (isPipelined(client)) {
      begin.catch(() => {}); // awaited below, after fn's statements
      let pending: Promise<T>;
      try {
        pending = fn(client);
      } finally {
        uncork();
      }
      result = await pending;
    } else {
      await begin;
      result = await fn(client);
    }
    await begin;
    const last = opts.last?.(result);
    const uncorkEnd = cork(client);
    let sent: Promise<[unknown, pg.QueryResult]>;
    try {
      sent = Promise.all([last ? client.query(last) : undefined, client.query("COMMIT")]);
    } finally {
      uncorkEnd();
    }
    const [, commit] = await sent;
    if (commit.command !== "COMMIT") throw new Error(`transaction not committed: ${commit.command}`);
    commitHooks.delete(client);
    for (const hook of hooks) {
      try {
        hook();
      } catch {
        // committed either way; the hook's own failure is its business
      }
    }
    return result;
  } catch (err) {
    try {
      await client.query("ROLLBACK");
    } catch (rollbackErr) {
      broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
    }
    throw err;
  } finally {
    commitHooks.delete(client);
    client.release(broken);
  }
}
