import type pg from "pg";

/** A pool or a client inside a transaction: store functions work on either. */
export type Db = pg.Pool | pg.PoolClient;
