import type pg from "pg";

/** Anything that runs a query: the pool for single reads, a transaction's client otherwise. */
export type Db = pg.Pool | pg.PoolClient;

/** SQLSTATE of a unique-constraint violation. */
export const UNIQUE_VIOLATION = "23505";

/** The constraint a unique violation tripped, if `err` is one. */
export function uniqueViolation(err: unknown): string | undefined {
  const e = err as { code?: unknown; constraint?: unknown } | null;
  if (e?.code !== UNIQUE_VIOLATION) return undefined;
  return typeof e.constraint === "string" ? e.constraint : "";
}
