import { createHash } from "node:crypto";
import type pg from "pg";
import { quoteSchema } from "./pool.js";

/**
 * One forward-only schema change. Versions are positive integers, strictly increasing in the
 * list; `sql` may hold several statements and runs with `search_path` set to the target schema,
 * so it names tables unqualified.
 */
export type Migration = { version: number; name: string; sql: string };

/** Options for {@link migrate}. */
export interface MigrateOptions {
  /** Schema owned by the service; created when missing. */
  schema: string;
  /** The service's full migration history, oldest first. */
  migrations: readonly Migration[];
}

/** Raised when the database and the code disagree about migration history. */
export class MigrationError extends Error {
  override readonly name = "MigrationError";
}

/**
 * First key of the two-int advisory lock. A fixed namespace keeps our locks from colliding with
 * advisory locks other code takes on single bigint keys; the second key is derived from the
 * schema, so services migrating different schemas never wait for each other.
 */
const LOCK_NAMESPACE = 0x636f6478; // "codx"

function checksum(sql: string): string {
  return createHash("sha256").update(sql, "utf8").digest("hex");
}

function assertWellFormed(migrations: readonly Migration[]): void {
  let previous = 0;
  for (const m of migrations) {
    if (!Number.isSafeInteger(m.version) || m.version <= 0) {
      throw new MigrationError(`migration ${JSON.stringify(m.name)}: version must be a positive integer`);
    }
    if (m.version <= previous) {
      throw new MigrationError(
        `migration versions must be strictly increasing: ${m.version} (${m.name}) follows ${previous}`,
      );
    }
    if (m.name.trim() === "") throw new MigrationError(`migration ${m.version}: name must not be empty`);
    previous = m.version;
  }
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

/**
 * Compares recorded history with the code's list and returns what still has to run.
 *
 * Applied versions newer than anything the code knows are tolerated: during a canary rollout an
 * old replica may start after a new one migrated, and refusing would turn a rollout into an
 * outage (so migrations must stay backward compatible). Everything else that means the history
 * diverged is refused: an edited migration, a known-range version that vanished from the code,
 * or a new migration slotted in below one already applied.
 */
function planPending(migrations: readonly Migration[], applied: readonly AppliedRow[]): Migration[] {
  const known = new Map(migrations.map((m) => [m.version, m]));
  const latestKnown = migrations.at(-1)?.version ?? 0;
  let latestApplied = 0;
  for (const row of applied) {
    latestApplied = Math.max(latestApplied, row.version);
    const m = known.get(row.version);
    if (m === undefined) {
      if (row.version > latestKnown) continue;
      throw new MigrationError(
        `migration ${row.version} (${row.name}) is applied in the database but missing from the code`,
      );
    }
    const expected = checksum(m.sql);
    if (row.checksum !== expected) {
      throw new MigrationError(
        `migration ${m.version} (${m.name}) was changed after it was applied: checksum in database ` +
          `${row.checksum}, in code ${expected}. Never edit an applied migration; add a new one.`,
      );
    }
  }
  const appliedVersions = new Set(applied.map((r) => r.version));
  const pending = migrations.filter((m) => !appliedVersions.has(m.version));
  const first = pending[0];
  if (first !== undefined && first.version < latestApplied) {
    throw new MigrationError(
      `migration ${first.version} (${first.name}) is pending but ${latestApplied} is already applied; ` +
        "renumber it above the latest applied version",
    );
  }
  return pending;
}

/**
 * Brings `schema` up to date with `migrations` and reports which versions this call applied.
 *
 * Why this shape: every replica runs `migrate` at start-up, so it must be safe concurrently. A
 * session-level `pg_advisory_lock` keyed on the schema serializes replicas (the lock dies with
 * the connection, so a crashed replica cannot wedge the others); whoever gets the lock second
 * finds nothing pending. Each migration runs in its own transaction together with its
 * `schema_migrations` row, so a failure leaves the schema at the last good version. Checksums
 * (sha256 of the SQL text) catch the classic mistake of editing a migration that already ran.
 *
 * @throws MigrationError when the list is malformed or disagrees with recorded history.
 */
export async function migrate(pool: pg.Pool, opts: MigrateOptions): Promise<{ applied: number[] }> {
  const schema = quoteSchema(opts.schema);
  assertWellFormed(opts.migrations);
  const client = await pool.connect();
  let broken: Error | undefined;
  const lockArgs = [LOCK_NAMESPACE, opts.schema];
  try {
    await client.query("SELECT pg_advisory_lock($1, hashtext($2))", lockArgs);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (
           version integer PRIMARY KEY,
           name text NOT NULL,
           checksum text NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
      const { rows } = await client.query<AppliedRow>(
        `SELECT version, name, checksum FROM ${schema}.schema_migrations ORDER BY version`,
      );
      const applied: number[] = [];
      for (const m of planPending(opts.migrations, rows)) {
        await applyOne(client, schema, m);
        applied.push(m.version);
      }
      return { applied };
    } finally {
      await client.query("SELECT pg_advisory_unlock($1, hashtext($2))", lockArgs);
    }
  } catch (err) {
    // Discard rather than pool the connection: it may still hold the lock or an aborted transaction.
    broken = err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.release(broken);
  }
}

async function applyOne(client: pg.PoolClient, schema: string, m: Migration): Promise<void> {
  await client.query("BEGIN");
  try {
    await client.query(`SET LOCAL search_path TO ${schema}`);
    await client.query(m.sql);
    await client.query(
      `INSERT INTO ${schema}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`,
      [m.version, m.name, checksum(m.sql)],
    );
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    const reason = err instanceof Error ? err.message : String(err);
    throw new MigrationError(`migration ${m.version} (${m.name}) failed: ${reason}`, { cause: err });
  }
}

/**
 * Drops a schema and everything in it. Meant for tests, which each create a uniquely named
 * schema and must leave the shared database as they found it.
 */
export async function dropSchema(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS ${quoteSchema(schema)} CASCADE`);
}
