import { createHash, randomBytes } from "node:crypto";
import { create, toJsonString } from "@bufbuild/protobuf";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Code, ServiceError } from "../errors.js";
import {
  IdempotencyKeys,
  type IdempotentCall,
  idempotencyMigrationSql,
  type RequestKey,
  refuseRequestId,
  requestFingerprint,
  runIdempotent,
} from "./idempotency.js";
import { dropSchema, migrate } from "./migrations.js";
import { createPool, withTransaction } from "./pool.js";

const schema = `t_idem_${randomBytes(5).toString("hex")}`;
let pool: pg.Pool;
const keys = new IdempotencyKeys();
const T0 = new Date("2024-05-01T12:00:00Z");
const HOUR = 3_600_000;

beforeAll(async () => {
  pool = createPool({ url: "postgres://root@127.0.0.1:5432/test", schema, max: 6 });
  await migrate(pool, {
    schema,
    migrations: [
      { version: 1, name: "idempotency", sql: idempotencyMigrationSql() },
      { version: 2, name: "done", sql: "CREATE TABLE done (id serial PRIMARY KEY, label text NOT NULL)" },
      // A table a service created by hand before the shared SQL existed (no age index).
      {
        version: 3,
        name: "legacy",
        sql: `CREATE TABLE legacy_keys (principal text NOT NULL, request_id text NOT NULL, method text NOT NULL,
                request_hash text NOT NULL, response bytea NULL, create_time timestamptz NOT NULL,
                PRIMARY KEY (principal, request_id))`,
      },
    ],
  });
});

afterAll(async () => {
  await dropSchema(pool, schema);
  await pool.end();
});

let n = 0;
function key(over: Partial<RequestKey> = {}): RequestKey {
  n += 1;
  return {
    principal: "user:alice",
    requestId: `req-${n}`,
    method: "CreateThing",
    requestHash: "h1",
    ...over,
  };
}

/** A mutation that inserts a row labelled `label` and answers with that label. */
function call(k: RequestKey, now = T0): IdempotentCall<string> {
  return {
    key: k,
    now,
    encode: (s) => Buffer.from(s, "utf8"),
    decode: (b) => Buffer.from(b).toString("utf8"),
    refuse: (why) => new Error(`refused: ${why}`),
  };
}

async function mutate(k: RequestKey, label: string, now = T0, store = keys): Promise<string> {
  return withTransaction(pool, (c) =>
    runIdempotent(c, store, call(k, now), async () => {
      await c.query("INSERT INTO done (label) VALUES ($1)", [label]);
      return label;
    }),
  );
}

/** A promise and the function settling it, to hold a transaction open at a chosen point. */
function signal(): { done: Promise<void>; fire: () => void } {
  let fire: () => void = () => {};
  const done = new Promise<void>((r) => {
    fire = r;
  });
  return { done, fire };
}

async function count(label: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM done WHERE label = $1", [
    label,
  ]);
  return rows[0]?.n ?? -1;
}

describe("runIdempotent", () => {
  it("does the work once and replays the stored response", async () => {
    const k = key();
    expect(await mutate(k, "once")).toBe("once");
    expect(await withTransaction(pool, (c) => runIdempotent(c, keys, call(k), async () => "again"))).toBe(
      "once",
    );
    expect(await count("once")).toBe(1);
  });

  it("refuses the id for another request or method, but not for another principal", async () => {
    const k = key();
    await mutate(k, "first");
    await expect(mutate({ ...k, requestHash: "h2" }, "x")).rejects.toThrow("refused: reused");
    await expect(mutate({ ...k, method: "DeleteThing" }, "x")).rejects.toThrow("refused: reused");
    expect(await mutate({ ...k, principal: "user:bob" }, "bobs")).toBe("bobs");
    expect(await count("x")).toBe(0);
  });

  it("stores nothing when the work fails, so a retry runs again", async () => {
    const k = key();
    await expect(
      withTransaction(pool, (c) =>
        runIdempotent(c, keys, call(k), async () => {
          throw new Error("boom");
        }),
      ),
    ).rejects.toThrow("boom");
    expect(await mutate(k, "retried")).toBe("retried");
  });

  it("stores what encode keeps, not what the first caller got", async () => {
    const k = key();
    const secretFree = { ...call(k), encode: () => Buffer.from("without-secret") };
    expect(
      await withTransaction(pool, (c) => runIdempotent(c, keys, secretFree, async () => "with-secret")),
    ).toBe("with-secret");
    expect(await mutate(k, "y")).toBe("without-secret");
  });

  it("lets exactly one of two concurrent duplicates work; the other waits and replays", async () => {
    const k = key();
    const [started, gate] = [signal(), signal()];
    const first = withTransaction(pool, (c) =>
      runIdempotent(c, keys, call(k), async () => {
        await c.query("INSERT INTO done (label) VALUES ('race')");
        started.fire();
        await gate.done;
        return "winner";
      }),
    );
    await started.done;
    const second = mutate(k, "race");
    await new Promise((r) => setTimeout(r, 150));
    gate.fire();
    expect(await Promise.all([first, second])).toEqual(["winner", "winner"]);
    expect(await count("race")).toBe(1);
  });

  it("lets a waiting duplicate run itself when the first rolls back", async () => {
    const k = key();
    const [started, gate] = [signal(), signal()];
    const first = withTransaction(pool, (c) =>
      runIdempotent(c, keys, call(k), async () => {
        started.fire();
        await gate.done;
        throw new Error("rolled back");
      }),
    );
    await started.done;
    const second = mutate(k, "took-over");
    await new Promise((r) => setTimeout(r, 150));
    gate.fire();
    await expect(first).rejects.toThrow("rolled back");
    expect(await second).toBe("took-over");
  });

  it("reports a committed claim without a response as in flight", async () => {
    const k = key();
    await withTransaction(pool, (c) => keys.claim(c, k, T0));
    await expect(mutate(k, "z")).rejects.toThrow("refused: in-flight");
  });

  it("refuses by default with INVALID_ARGUMENT on request_id, or ABORTED IN_FLIGHT", async () => {
    const k = key();
    await mutate(k, "default-refusal");
    const { refuse: _custom, ...defaults } = call({ ...k, requestHash: "other" });
    const err = await withTransaction(pool, (c) => runIdempotent(c, keys, defaults, async () => "x")).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as ServiceError).code).toBe(Code.INVALID_ARGUMENT);
    expect((err as ServiceError).findDetail(BadRequestSchema)?.fieldViolations[0]?.field).toBe("request_id");
    const inFlight = refuseRequestId("in-flight") as ServiceError;
    expect([inFlight.code, inFlight.reason]).toEqual([Code.ABORTED, "IN_FLIGHT"]);
  });
});

describe("IdempotencyKeys retention", () => {
  it("forgets ids after the retention: reclaimed in place, then purged in batches", async () => {
    const store = new IdempotencyKeys({ retentionMs: 24 * HOUR });
    const k = key({ principal: "user:retention" });
    await mutate(k, "day-one", T0, store);
    expect(await mutate(k, "later", new Date(T0.getTime() + 23 * HOUR), store)).toBe("day-one");
    const nextDay = new Date(T0.getTime() + 25 * HOUR);
    expect(await mutate({ ...k, requestHash: "other" }, "day-two", nextDay, store)).toBe("day-two");
    for (let i = 0; i < 3; i++) await mutate(key({ principal: "user:old" }), "old", T0, store);
    const farFuture = new Date(T0.getTime() + 1000 * HOUR);
    expect(await store.purgeExpired(pool, farFuture, 2)).toBe(2);
    expect(await store.purgeExpired(pool, farFuture, 10_000)).toBeGreaterThanOrEqual(2);
    expect(await store.purgeExpired(pool, farFuture)).toBe(0);
  });

  it("works on a table created by hand under another name", async () => {
    const legacy = new IdempotencyKeys({ table: "legacy_keys" });
    const k = key();
    expect(await mutate(k, "legacy", T0, legacy)).toBe("legacy");
    expect(await mutate(k, "legacy-again", T0, legacy)).toBe("legacy");
    const { rows } = await pool.query("SELECT 1 FROM legacy_keys WHERE request_id = $1", [k.requestId]);
    expect(rows).toHaveLength(1);
  });

  it("refuses table names that would need quoting", () => {
    expect(() => new IdempotencyKeys({ table: "Keys; DROP" })).toThrow(/invalid idempotency table name/);
    expect(() => idempotencyMigrationSql("a".repeat(48))).toThrow(/invalid idempotency table name/);
    expect(idempotencyMigrationSql("api_keys_ids")).toContain("CREATE TABLE api_keys_ids (");
  });
});

describe("requestFingerprint", () => {
  const info = (metadata: Record<string, string>, domain = "d") =>
    create(ErrorInfoSchema, { reason: "R", domain, metadata });

  it("ignores map-entry order and omitted fields, and sees every other difference", () => {
    const a = requestFingerprint(ErrorInfoSchema, info({ x: "1", y: "2" }));
    expect(requestFingerprint(ErrorInfoSchema, info({ y: "2", x: "1" }))).toBe(a);
    expect(requestFingerprint(ErrorInfoSchema, info({ x: "1", y: "3" }))).not.toBe(a);
    expect(requestFingerprint(ErrorInfoSchema, info({ x: "1", y: "2" }, "e"))).not.toBe(a);
    expect(requestFingerprint(ErrorInfoSchema, info({ x: "1", y: "2" }, "e"), { omit: ["domain"] })).toBe(
      requestFingerprint(ErrorInfoSchema, info({ x: "1", y: "2" }, "f"), { omit: ["domain"] }),
    );
  });

  it("reproduces the hash of toJsonString when asked to keep the field order", () => {
    const m = info({ x: "1" });
    const legacy = createHash("sha256").update(toJsonString(ErrorInfoSchema, m)).digest("hex");
    expect(requestFingerprint(ErrorInfoSchema, m, { keyOrder: "as-given" })).toBe(legacy);
    expect(requestFingerprint(ErrorInfoSchema, m)).not.toBe(legacy);
  });
});
