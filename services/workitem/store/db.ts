import type pg from "pg";

/** Anything that runs a query: the pool for single statements, a client inside a transaction. */
export type Db = pg.Pool | pg.PoolClient;

/** int4/int8/numeric come back as number, bigint or string depending on the column; normalise. */
export function num(value: unknown): number {
  return typeof value === "number" ? value : Number(value);
}
