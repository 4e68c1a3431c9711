import { randomBytes } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropSchema, type Migration, MigrationError, migrate } from "./migrations.js";
import { afterCommit, createPool, quoteSchema, withTransaction } from "./pool.js";

const URL = "postgres://root@127.0.0.1:5432/test";
const schemas: string[] = [];
const pools: pg.Pool[] = [];

function uniqueSchema(tag: string): string {
  const schema = `t_${tag}_${randomBytes(5).toString("hex")}`;
  schemas.push(schema);
  return schema;
}

function pool(schema: string, max = 4): pg.Pool {
  const p = createPool({ url: URL, schema, max, applicationName: "mesh-postgres-test" });
  pools.push(p);
  return p;
}

const history: Migration[] = [
  {
    version: 1,
    name: "widgets",
    sql: "CREATE TABLE widgets (id bigserial PRIMARY KEY, label text NOT NULL)",
  },
  { version: 2, name: "widget_size", sql: "ALTER TABLE widgets ADD COLUMN size integer NOT NULL DEFAULT 0" },
];

let admin: pg.Pool;
beforeAll(() => {
  admin = pool("public");
});

afterAll(async () => {
  for (const s of schemas) await dropSchema(admin, s);
  await Promise.all(pools.map((p) => p.end()));
});

describe("createPool", () => {
  it("refuses schema names that would need quoting", () => {
    expect(() => quoteSchema("Bad-Name")).toThrow(/invalid schema name/);
    expect(() => quoteSchema('x"; DROP')).toThrow(/invalid schema name/);
    expect(() => createPool({ url: URL, schema: "a".repeat(64) })).toThrow(/invalid schema name/);
    expect(quoteSchema("svc_1")).toBe('"svc_1"');
  });

  it("pins search_path on every connection and parses int8 as bigint", async () => {
    const schema = uniqueSchema("pool");
    const p = pool(schema, 3);
    await migrate(p, { schema, migrations: history });
    const clients = await Promise.all([p.connect(), p.connect(), p.connect()]);
    try {
      for (const c of clients) {
        const { rows } = await c.query<{ s: string }>("SELECT current_schema() AS s");
        expect(rows[0]?.s).toBe(schema);
      }
    } finally {
      for (const c of clients) c.release();
    }
    const { rows } = await p.query<{ id: bigint; big: bigint; ids: bigint[] }>(
      "INSERT INTO widgets (label) VALUES ('a') RETURNING id, 9007199254740993::int8 AS big, ARRAY[1,2]::int8[] AS ids",
    );
    expect(rows[0]?.id).toBe(1n);
    expect(rows[0]?.big).toBe(9007199254740993n);
    expect(rows[0]?.ids).toEqual([1n, 2n]);
  });
});

describe("prepared statements", () => {
  /** The statements prepared on the one connection of `p`, by text. */
  async function prepared(p: pg.Pool): Promise<Map<string, string>> {
    const { rows } = await p.query<{ name: string; statement: string }>(
      "SELECT name, statement FROM pg_prepared_statements",
    );
    return new Map(rows.map((r) => [r.statement, r.name]));
  }

  it("prepares a parameterised statement once per connection, named by its text", async () => {
    const schema = uniqueSchema("prep");
    const p = pool(schema, 1);
    const text = "SELECT $1::int + 1 AS x";
    for (let i = 0; i < 3; i++) {
      const { rows } = await p.query<{ x: number }>(text, [i]);
      expect(rows[0]?.x).toBe(i + 1);
    }
    // The config form too, inside a transaction, and the same text keeps its one name.
    await withTransaction(p, (c) => c.query({ text, values: [5] }));
    const byText = await prepared(p);
    expect(byText.get(text)).toMatch(/^codex_\d+$/);
    // Texts without parameters (BEGIN, COMMIT, this catalog query) stay unnamed.
    expect([...byText.keys()].filter((t) => !t.includes("$"))).toEqual([]);
    const plain = createPool({ url: URL, schema, max: 1, prepare: false });
    pools.push(plain);
    await plain.query(text, [1]);
    expect((await prepared(plain)).size).toBe(0);
  });

  it("a table changed under SELECT * fails one call, then the next runs on a fresh connection", async () => {
    const schema = uniqueSchema("prep");
    const p = pool(schema, 1);
    await admin.query(`CREATE SCHEMA ${quoteSchema(schema)}`);
    await p.query("CREATE TABLE gadgets (id int PRIMARY KEY)");
    await p.query("INSERT INTO gadgets VALUES (1)");
    const read = () => withTransaction(p, (c) => c.query("SELECT * FROM gadgets WHERE id = $1", [1]));
    expect((await read()).rows).toEqual([{ id: 1 }]);
    // Another replica's migration, during a rolling deploy.
    await admin.query(`ALTER TABLE ${quoteSchema(schema)}.gadgets ADD COLUMN label text DEFAULT 'x'`);
    await expect(read()).rejects.toMatchObject({ code: "0A000" });
    expect((await read()).rows).toEqual([{ id: 1, label: "x" }]);
  });
});

describe("withTransaction", () => {
  it("commits on success, rolls back on error and always releases the client", async () => {
    const schema = uniqueSchema("tx");
    const p = pool(schema, 1);
    await migrate(p, { schema, migrations: history });
    await withTransaction(p, (c) => c.query("INSERT INTO widgets (label) VALUES ('kept')"));
    await expect(
      withTransaction(p, async (c) => {
        await c.query("INSERT INTO widgets (label) VALUES ('lost')");
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    // With max = 1 this would hang if the failed transaction had leaked its client.
    const { rows } = await p.query<{ label: string }>("SELECT label FROM widgets ORDER BY id");
    expect(rows.map((r) => r.label)).toEqual(["kept"]);
    expect(p.totalCount - p.idleCount).toBe(0);
  });

  it("sends the last statement with COMMIT, and a failing one rolls back everything", async () => {
    const schema = uniqueSchema("txlast");
    const p = pool(schema, 1);
    await migrate(p, { schema, migrations: history });
    const label = await withTransaction(
      p,
      async (c) => {
        await c.query("INSERT INTO widgets (label) VALUES ('first')");
        return "second";
      },
      { last: (l) => ({ text: "INSERT INTO widgets (label) VALUES ($1)", values: [l] }) },
    );
    expect(label).toBe("second");
    // A last statement that fails (NOT NULL) makes COMMIT answer ROLLBACK: it must throw, not return.
    await expect(
      withTransaction(p, (c) => c.query("INSERT INTO widgets (label) VALUES ('lost')"), {
        last: () => ({ text: "INSERT INTO widgets (label) VALUES ($1)", values: [null] }),
      }),
    ).rejects.toThrow(/null value/);
    // fn's own statement failing after a pipelined BEGIN: rolled back, the client still usable.
    await expect(
      withTransaction(p, async (c) => {
        await c.query("INSERT INTO widgets (label) VALUES ('lost too')");
        await c.query("INSERT INTO widgets (nope) VALUES (1)");
      }),
    ).rejects.toThrow(/nope/);
    const { rows } = await p.query<{ label: string }>("SELECT label FROM widgets ORDER BY id");
    expect(rows.map((r) => r.label)).toEqual(["first", "second"]);
    expect(p.totalCount - p.idleCount).toBe(0);
  });

  it("runs afterCommit hooks once the transaction committed, never after a rollback", async () => {
    const p = pool(uniqueSchema("hooks"), 1);
    const ran: string[] = [];
    await withTransaction(p, async (c) => {
      expect(afterCommit(c, () => ran.push("committed"))).toBe(true);
      await c.query("SELECT 1");
      expect(ran).toEqual([]); // not before COMMIT
    });
    expect(ran).toEqual(["committed"]);
    await expect(
      withTransaction(p, async (c) => {
        afterCommit(c, () => ran.push("rolled back"));
        throw new Error("no");
      }),
    ).rejects.toThrow("no");
    expect(ran).toEqual(["committed"]);
    // Outside a transaction there is nothing to wait for; the same client, later, is not in one.
    const c = await p.connect();
    try {
      expect(afterCommit(c, () => ran.push("never"))).toBe(false);
    } finally {
      c.release();
    }
    expect(ran).toEqual(["committed"]);
  });

  it("behaves the same on a pool without pipelining", async () => {
    const schema = uniqueSchema("txplain");
    const p = createPool({ url: URL, schema, max: 1, pipeline: false });
    pools.push(p);
    await migrate(p, { schema, migrations: history });
    await withTransaction(p, (c) => c.query("INSERT INTO widgets (label) VALUES ('a')"), {
      last: () => ({ text: "INSERT INTO widgets (label) VALUES ('b')" }),
    });
    await expect(
      withTransaction(p, (c) => c.query("INSERT INTO widgets (label) VALUES ('lost')"), {
        last: () => ({ text: "INSERT INTO widgets (label) VALUES (NULL)" }),
      }),
    ).rejects.toThrow(/null value/);
    const { rows } = await p.query<{ label: string }>("SELECT label FROM widgets ORDER BY id");
    expect(rows.map((r) => r.label)).toEqual(["a", "b"]);
  });

  it("pipelines: BEGIN and the first statement leave in one write, COMMIT with the last", async () => {
    const schema = uniqueSchema("txpipe");
    const p = pool(schema, 1);
    await migrate(p, { schema, migrations: history });
    // What happens on the socket, in order: flushes to the kernel (one per write or writev
    // syscall), and the server's ReadyForQuery answers.
    const wire: ("flush" | "ready")[] = [];
    const client = await p.connect();
    type Flush = (...a: unknown[]) => unknown;
    const connection = (
      client as unknown as {
        connection: { stream: { _write: Flush; _writev: Flush }; on: (e: string, f: () => void) => void };
      }
    ).connection;
    const { _write, _writev } = connection.stream;
    connection.stream._write = (...a: unknown[]) => {
      wire.push("flush");
      return _write.apply(connection.stream, a);
    };
    connection.stream._writev = (...a: unknown[]) => {
      wire.push("flush");
      return _writev.apply(connection.stream, a);
    };
    connection.on("readyForQuery", () => wire.push("ready"));
    client.release();
    await withTransaction(p, (c) => c.query("SELECT 1"), {
      last: () => ({ text: "SELECT 2" }),
    });
    // BEGIN + SELECT 1 in one flush; then SELECT 2 + COMMIT in one flush: two round trips.
    expect(wire).toEqual(["flush", "ready", "ready", "flush", "ready", "ready"]);
  });
});

describe("migrate", () => {
  it("creates the schema, applies pending migrations once and records checksums", async () => {
    const schema = uniqueSchema("mig");
    const p = pool(schema);
    expect(await migrate(p, { schema, migrations: history.slice(0, 1) })).toEqual({ applied: [1] });
    expect(await migrate(p, { schema, migrations: history })).toEqual({ applied: [2] });
    expect(await migrate(p, { schema, migrations: history })).toEqual({ applied: [] });
    const { rows } = await p.query<{ version: number; checksum: string }>(
      "SELECT version, checksum FROM schema_migrations ORDER BY version",
    );
    expect(rows.map((r) => r.version)).toEqual([1, 2]);
    expect(rows[0]?.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it("serializes concurrent replicas with the advisory lock: each migration applies exactly once", async () => {
    const schema = uniqueSchema("race");
    // A migration that fails if it runs twice and is slow enough to overlap without the lock.
    const slow: Migration[] = [
      { version: 1, name: "slow", sql: "SELECT pg_sleep(0.3); CREATE TABLE once (id int)" },
      ...history.map((m) => ({ ...m, version: m.version + 1 })),
    ];
    const replicas = [pool(schema), pool(schema), pool(schema)];
    const results = await Promise.all(replicas.map((p) => migrate(p, { schema, migrations: slow })));
    const applied = results.flatMap((r) => r.applied).sort();
    expect(applied).toEqual([1, 2, 3]);
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
  });

  it("refuses an applied migration whose SQL changed", async () => {
    const schema = uniqueSchema("sum");
    const p = pool(schema);
    await migrate(p, { schema, migrations: history });
    const edited = [history[0]!, { ...history[1]!, sql: `${history[1]!.sql} -- tweak` }];
    await expect(migrate(p, { schema, migrations: edited })).rejects.toThrow(
      /migration 2 \(widget_size\) was changed after it was applied/,
    );
  });

  it("refuses malformed or diverging histories", async () => {
    const schema = uniqueSchema("order");
    const p = pool(schema);
    const [one, two] = [history[0]!, history[1]!];
    await expect(migrate(p, { schema, migrations: [two, one] })).rejects.toBeInstanceOf(MigrationError);
    await expect(migrate(p, { schema, migrations: [one, { ...two, version: 1 }] })).rejects.toThrow(
      /strictly increasing/,
    );
    await migrate(p, { schema, migrations: [{ ...two, version: 5, sql: "CREATE TABLE five (id int)" }] });
    await expect(
      migrate(p, { schema, migrations: [one, { ...two, version: 5, sql: "CREATE TABLE five (id int)" }] }),
    ).rejects.toThrow(/migration 1 \(widgets\) is pending but 5 is already applied/);
  });

  it("leaves the schema at the last good version when a migration fails", async () => {
    const schema = uniqueSchema("fail");
    const p = pool(schema);
    const bad = [...history, { version: 3, name: "broken", sql: "ALTER TABLE nope ADD COLUMN x int" }];
    await expect(migrate(p, { schema, migrations: bad })).rejects.toThrow(/migration 3 \(broken\) failed/);
    const { rows } = await p.query<{ version: number }>(
      "SELECT version FROM schema_migrations ORDER BY version",
    );
    expect(rows.map((r) => r.version)).toEqual([1, 2]);
    // The lock must have been released: another migrate call gets through.
    expect(await migrate(p, { schema, migrations: history })).toEqual({ applied: [] });
  });
});
