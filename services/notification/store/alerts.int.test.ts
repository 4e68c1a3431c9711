import { randomUUID } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../../mesh/postgres/migrations.js";
import { createPool, withTransaction } from "../../../mesh/postgres/pool.js";
import { DATABASE_URL, dropTestSchema, uniqueName } from "../../../test/support/harness.js";
import type { AlertThresholds } from "../domain/alert-rules.js";
import { FIRING_HORIZON_MS, listFirings, recordOccurrence } from "./alerts.js";
import { migrations } from "./migrations.js";
import { sweepHistory } from "./retention.js";

const S = 1_000;
const M = 60 * S;
const schema = uniqueName("notification_alerts");
let pool: pg.Pool;

beforeAll(async () => {
  pool = createPool({ url: DATABASE_URL, schema, max: 8 });
  await migrate(pool, { schema, migrations });
});

afterAll(async () => {
  await pool?.end();
  await dropTestSchema(schema);
});

const t0 = Date.now() - 60 * M;

/** One occurrence per event: its id doubles as the occurrence id. */
interface Occ {
  id: string;
  atMs: number;
}

function burst(offsetsMs: number[]): Occ[] {
  return offsetsMs.map((ms, i) => ({ id: `e${i}-${randomUUID()}`, atMs: t0 + ms }));
}

/** Processes `occs` one transaction each, in the given order (or all at once), as the consumer would. */
async function processAll(
  rule: AlertThresholds,
  subscriptionId: string,
  key: string,
  occs: Occ[],
  mode: "sequential" | "concurrent" = "sequential",
) {
  const one = (o: Occ) =>
    withTransaction(pool, (c) =>
      recordOccurrence(c, rule, {
        subscriptionId,
        key,
        occurrenceId: o.id,
        at: new Date(o.atMs),
        eventId: o.id,
      }),
    ).then((trip) => (trip === undefined ? undefined : { ...trip, eventId: o.id }));
  const results = [];
  if (mode === "concurrent") results.push(...(await Promise.all(occs.map(one))));
  else for (const o of occs) results.push(await one(o));
  return results.filter((r) => r !== undefined);
}

/** Deterministic shuffle (seeded LCG), so a failing order can be reproduced. */
function shuffle<T>(xs: T[], seed: number): T[] {
  let s = seed;
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 48_271) % 2_147_483_647;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe("alert occurrences in Postgres", () => {
  const agentLost = { threshold: 2, windowMs: 10 * M, cooldownMs: 10 * M };

  it("fires once, stamped at the second loss with count 2, in forward, reverse and every shuffled order", async () => {
    const sub = randomUUID();
    const occs = burst([0, S, 2 * S]);
    const orders = {
      forward: occs,
      reverse: [...occs].reverse(),
      ...Object.fromEntries([1, 2, 3, 4].map((seed) => [`shuffle ${seed}`, shuffle(occs, seed)])),
    };
    for (const [name, order] of Object.entries(orders)) {
      const fired = await processAll(agentLost, sub, name, order);
      expect(fired, name).toHaveLength(1);
      // The delivered count is the window's at decision time; the stamp ends the first full window.
      expect(fired[0]?.count, name).toBe(2);
      const firings = await listFirings(pool, sub, name);
      expect(firings, name).toEqual([{ at: new Date(t0 + S), count: 2, eventId: fired[0]?.eventId }]);
    }
    // Reverse order decides on a2 (a3 was in): that firing is stamped a3, then a1 moves it back to a2.
    const rev = await listFirings(pool, sub, "reverse");
    expect(rev[0]?.eventId).toBe(occs[1]?.id);
  });

  it("fires a longer burst once at its threshold-th occurrence whatever the order, also all at once", async () => {
    const rule = { threshold: 3, windowMs: 5 * M, cooldownMs: 30 * M };
    const sub = randomUUID();
    const offsets = [0, M, 7 * M, 8 * M, 9 * M, 10 * M]; // first full window: (4m, 9m]
    for (let seed = 0; seed < 30; seed++) {
      const occs = burst(offsets);
      const order = seed === 0 ? occs : seed === 1 ? [...occs].reverse() : shuffle(occs, seed);
      const mode = seed % 3 === 2 ? "concurrent" : "sequential";
      const fired = await processAll(rule, sub, `k${seed}`, order, mode);
      expect(
        fired.map((f) => f.count),
        `seed ${seed} ${mode}`,
      ).toEqual([3]);
      const firings = await listFirings(pool, sub, `k${seed}`);
      expect(
        firings.map((f) => f.at),
        `seed ${seed} ${mode}`,
      ).toEqual([new Date(t0 + 9 * M)]);
    }
  });

  it("stays exactly-once when every occurrence of a key is decided at the same time", async () => {
    const sub = randomUUID();
    for (let round = 0; round < 15; round++) {
      const occs = burst([5 * S, 4 * S, 3 * S, 2 * S, S, 0]);
      const fired = await processAll(agentLost, sub, `c${round}`, occs, "concurrent");
      expect(
        fired.map((f) => f.count),
        `round ${round}`,
      ).toEqual([2]);
      expect((await listFirings(pool, sub, `c${round}`)).map((f) => f.at)).toEqual([new Date(t0 + S)]);
    }
  });

  it("decides nothing twice: a redelivered occurrence, and one too old for any window, change nothing", async () => {
    const sub = randomUUID();
    const occs = burst([0, S]);
    expect(await processAll(agentLost, sub, "k", occs)).toHaveLength(1);
    const again = burst([0, S]).map((o, i) => ({ ...o, id: occs[i]?.id ?? "" }));
    expect(await processAll(agentLost, sub, "k", [...occs, ...again])).toEqual([]);
    const old = { threshold: 1, windowMs: M, cooldownMs: 0 };
    const ancient = [{ id: randomUUID(), atMs: Date.now() - 8 * 24 * 60 * M }];
    expect(await processAll(old, sub, "old", ancient)).toEqual([]);
    const { rows } = await pool.query(
      "SELECT 1 FROM alert_occurrences WHERE subscription_id = $1 AND key = 'old'",
      [sub],
    );
    expect(rows).toHaveLength(0);
  });

  it("fires again after the cooldown, and retention forgets firings that can no longer cover a trip", async () => {
    const sub = randomUUID();
    const rule = { threshold: 2, windowMs: M, cooldownMs: 5 * M };
    // Two bursts 5 minutes apart (= the cooldown), processed newest first.
    const first = burst([0, S]);
    const second = burst([5 * M + S, 5 * M + 2 * S]);
    const fired = await processAll(rule, sub, "k", [...second.reverse(), ...first.reverse()]);
    expect(fired.map((f) => f.count)).toEqual([2, 2]);
    expect((await listFirings(pool, sub, "k")).map((f) => f.at)).toEqual([
      new Date(t0 + S),
      new Date(t0 + 5 * M + 2 * S),
    ]);
    const longAgo = new Date(Date.now() - FIRING_HORIZON_MS - M);
    await pool.query(
      "UPDATE alert_firings SET fired_at = fired_at - ($1::bigint * interval '1 millisecond')",
      [Date.now() - longAgo.getTime()],
    );
    await pool.query("DELETE FROM alert_occurrences WHERE subscription_id = $1", [sub]);
    await sweepHistory(pool, new Date(0));
    expect(await listFirings(pool, sub, "k")).toEqual([]);
    const state = await pool.query("SELECT 1 FROM alert_state WHERE subscription_id = $1", [sub]);
    expect(state.rows).toHaveLength(0);
  });

  it("turns the last firing of the previous schema into a firing", async () => {
    const old = uniqueName("notification_alerts_v2");
    const p = createPool({ url: DATABASE_URL, schema: old, max: 1 });
    try {
      await migrate(p, { schema: old, migrations: migrations.filter((m) => m.version <= 2) });
      const sub = randomUUID();
      const at = new Date(t0);
      await p.query("INSERT INTO alert_state (subscription_id, key, last_fired_at) VALUES ($1, 'k', $2)", [
        sub,
        at,
      ]);
      await migrate(p, { schema: old, migrations });
      expect(await listFirings(p, sub, "k")).toEqual([{ at, count: 0, eventId: "" }]);
      const silenced = await withTransaction(p, (c) =>
        recordOccurrence(
          c,
          { threshold: 1, windowMs: M, cooldownMs: M },
          {
            subscriptionId: sub,
            key: "k",
            occurrenceId: "o1",
            at: new Date(t0 + S),
            eventId: "e1",
          },
        ),
      );
      expect(silenced).toBeUndefined();
    } finally {
      await p.end();
      await dropTestSchema(old);
    }
  });
});
