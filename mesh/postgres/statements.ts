import pg from "pg";

/**
 * Statements with parameters are prepared once per connection: the first execution sends Parse
 * with a name, later ones only Bind and Execute, so Postgres parses and analyses the text once.
 *
 * Every execution is still planned for its parameters: pools set `plan_cache_mode` to
 * `force_custom_plan`. Left to itself, Postgres switches a statement to a cached generic plan
 * after five executions when that plan looks no dearer; a service's first executions meet empty
 * tables, where a sequential scan looks cheapest, and the plan stays until the next ANALYZE. The
 * audit intake's duplicate check (`event_id = ANY($1)`, named by hand before this) was such a
 * plan: after a burst of 6,000 runs it scanned the whole table on every append, 64% of a core.
 *
 * Why: at 100 runs/s a profile of Postgres put parse, analysis and planning at a third of the CPU
 * the agent manager's connections cost it (perf; base_yyparse, pg_plan_queries). Every service
 * sends the same few statement texts over and over. Drivers in other languages do this by default
 * (pgx's statement cache, postgres.js `prepare: true`); node-postgres only prepares queries that
 * carry a `name`, and naming each statement by hand is easy to forget and to get wrong (one name
 * for two texts is an error), so names come from the text.
 *
 * - A text gets a name the first time it is seen, the same on every connection of the process.
 * - Only texts with parameters: a text without any is usually a one-off or a statement the
 *   simple protocol must run (BEGIN, several statements in one string).
 * - At most {@link MAX_NAMED} distinct texts are named; beyond that, statements run unnamed as
 *   before. SQL built with varying text (values spliced in) cannot fill Postgres's memory.
 * - A caller's own `name` is left alone.
 *
 * A prepared statement's result columns are fixed when it is parsed. If a migration (another
 * replica's, during a rolling deploy) changes a table under `SELECT *`, Postgres refuses the next
 * execution with "cached plan must not change result type". That call fails once; the connection
 * is closed rather than pooled again, so the next statement runs on a new one, prepared afresh.
 */
export const MAX_NAMED = 1_000;

const names = new Map<string, string>();

/** The name a text is prepared under, or undefined when the cache is full. */
export function statementName(text: string): string | undefined {
  let name = names.get(text);
  if (name === undefined && names.size < MAX_NAMED) {
    name = `codex_${names.size + 1}`;
    names.set(text, name);
  }
  return name;
}

/** "cached plan must not change result type": the statement's tables changed since it was parsed. */
const RESULT_TYPE_CHANGED = "0A000";

type QueryArgs = Parameters<pg.Client["query"]>;

/** A pg client that names parameterised statements by their text (see the module comment). */
export class PreparingClient extends pg.Client {
  // pg.Client.query has a dozen overloads; this sits in front of all of them and only rewrites
  // the two shapes that carry parameters: (text, values[, cb]) and ({ text, values, ... }[, cb]).
  override query(...args: unknown[]): never {
    const [config, values] = args;
    if (typeof config === "string" && Array.isArray(values) && values.length > 0) {
      const name = statementName(config);
      if (name !== undefined) args.splice(0, 2, { name, text: config, values });
    } else if (isUnnamedConfig(config)) {
      const name = statementName(config.text);
      if (name !== undefined) args[0] = { ...config, name };
    }
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback === "function") {
      // The callback form (pg-pool's pool.query uses it): errors reach the callback only.
      args[last] = (err: unknown, res: unknown) => {
        if (err) this.#onError(err);
        (callback as (e: unknown, r: unknown) => void)(err, res);
      };
    }
    const result = (super.query as (...a: QueryArgs) => unknown)(...(args as QueryArgs));
    if (result instanceof Promise) result.catch((err: unknown) => this.#onError(err));
    return result as never;
  }

  #onError(err: unknown): void {
    if ((err as { code?: string }).code !== RESULT_TYPE_CHANGED) return;
    if (!/cached plan must not change result type/.test(String((err as Error).message))) return;
    // Its prepared statements are stale: end the connection; the pool drops ended clients.
    void this.end().catch(() => {});
  }
}

function isUnnamedConfig(config: unknown): config is pg.QueryConfig & { text: string } {
  if (config === null || typeof config !== "object") return false;
  const c = config as { name?: unknown; text?: unknown; values?: unknown; submit?: unknown };
  // `submit` marks a Submittable (a cursor, a stream): those manage their own protocol flow.
  return (
    c.name === undefined &&
    typeof c.text === "string" &&
    Array.isArray(c.values) &&
    c.values.length > 0 &&
    c.submit === undefined
  );
}
