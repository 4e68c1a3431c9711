import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeRedis, createRedis, ping, type Redis } from "./redis.js";

const URL = "redis://127.0.0.1:6379";
const prefix = `test:mesh-redis:${randomUUID()}:`;
let client: Redis;
let raw: Redis;

beforeAll(() => {
  client = createRedis(URL, { keyPrefix: prefix, name: "mesh-redis-test" });
  raw = createRedis(URL, { name: "mesh-redis-test-raw" });
});

afterAll(async () => {
  // Clean everything under the unique prefix (SCAN patterns are not prefixed by ioredis).
  let cursor = "0";
  do {
    const [next, keys] = await raw.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
    cursor = next;
    if (keys.length > 0) await raw.del(...keys);
  } while (cursor !== "0");
  expect(await raw.keys(`${prefix}*`)).toEqual([]);
  await closeRedis(client);
  await closeRedis(raw);
});

describe("createRedis (real server)", () => {
  it("connects eagerly, names the connection and answers ping", async () => {
    expect(await ping(client)).toBe(true);
    expect(client.status).toBe("ready");
    expect(await client.client("GETNAME")).toBe("mesh-redis-test");
  });

  it("prefixes every key", async () => {
    await client.set("lease:run-1", "token-7", "PX", 60_000);
    expect(await client.get("lease:run-1")).toBe("token-7");
    expect(await raw.get(`${prefix}lease:run-1`)).toBe("token-7");
    expect(await raw.get("lease:run-1")).toBeNull();
  });

  it("queues commands issued while connecting (offline queue)", async () => {
    const fresh = createRedis(URL, { keyPrefix: prefix });
    try {
      expect(fresh.status).not.toBe("ready");
      expect(await fresh.incr("counter")).toBe(1);
    } finally {
      await closeRedis(fresh);
    }
    expect(fresh.status).toBe("end");
  });
});

describe("ping and closeRedis against an unreachable server", () => {
  it("reports not ready within the timeout instead of hanging or throwing", async () => {
    const warnings: unknown[] = [];
    const down = createRedis("redis://127.0.0.1:1", {
      maxRetriesPerRequest: 1,
      logger: { warn: (obj: unknown) => void warnings.push(obj) },
    });
    try {
      const started = Date.now();
      expect(await ping(down, 300)).toBe(false);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(warnings.length).toBeGreaterThan(0);
    } finally {
      const started = Date.now();
      await closeRedis(down, 200);
      expect(Date.now() - started).toBeLessThan(1_000);
    }
    // Closed for good: no reconnect attempts (hence no new errors) afterwards.
    const seen = warnings.length;
    await new Promise((r) => setTimeout(r, 500));
    expect(warnings.length).toBe(seen);
  });
});
