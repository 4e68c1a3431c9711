import { randomUUID } from "node:crypto";
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import type pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AgentLostSchema,
  AgentRegisteredSchema,
  RunStartedSchema,
} from "../../../gen/codex/events/v1/agent_events_pb.js";
import {
  ProjectCreatedSchema,
  ProjectUpdatedSchema,
} from "../../../gen/codex/events/v1/project_events_pb.js";
import { AlertKind } from "../../../gen/codex/notification/v1/subscription_pb.js";
import { encodeEnvelope } from "../../../mesh/events/envelope.js";
import { createLogger } from "../../../mesh/logging.js";
import type { ConsumedMessage } from "../../../mesh/nats/consumer.js";
import { eventually } from "../../../mesh/nats/testing.js";
import { migrate } from "../../../mesh/postgres/migrations.js";
import { createPool } from "../../../mesh/postgres/pool.js";
import { DATABASE_URL, dropTestSchema, uniqueName } from "../../../test/support/harness.js";
import { migrations } from "../store/migrations.js";
import type { StoredAlertRule } from "../store/subscription-record.js";
import { deleteSubscription, insertSubscription } from "../store/subscriptions.js";
import { envelopeOf } from "../testing/events.js";
import { ingestMessages } from "./consumer.js";
import { loadEventRegistry } from "./registry.js";
import { SubscriptionCache } from "./subscription-cache.js";

const schema = uniqueName("notification_consume");
const logger = createLogger({ service: "test", level: "error" });
let pool: pg.Pool;
let registry: Awaited<ReturnType<typeof loadEventRegistry>>;
/** Connections checked out of `pool`: every query the consumer makes takes one. */
let checkouts = 0;

beforeAll(async () => {
  pool = createPool({ url: DATABASE_URL, schema, max: 4 });
  await migrate(pool, { schema, migrations });
  pool.on("acquire", () => checkouts++);
  registry = await loadEventRegistry();
});

afterAll(async () => {
  await pool?.end();
  await dropTestSchema(schema);
});

beforeEach(async () => {
  await pool.query(
    "TRUNCATE subscriptions, deliveries, delivery_attempts, events, alert_occurrences, alert_firings, alert_state",
  );
});

async function subscribe(projectId: string, eventTypes: string[], alertRule: StoredAlertRule | null = null) {
  const rec = await insertSubscription(pool, randomUUID(), projectId, "test", {
    displayName: eventTypes.join(","),
    eventTypes,
    channel: { type: "webhook", url: "http://127.0.0.1:9/x" },
    credential: null,
    template: "",
    alertRule,
    enabled: true,
  });
  return rec.id;
}

let seq = 0;
function message<D extends DescMessage>(
  schemaOf: D,
  payload: MessageInitShape<D>,
  projectId: string,
  o: { id?: string; occurredAtMs?: number } = {},
): ConsumedMessage & { id: string } {
  const env = envelopeOf(schemaOf, payload, {
    aggregateType: "test",
    aggregateId: "a1",
    projectId,
    ...o,
  });
  return {
    id: env.id,
    subject: `t.events.test.${schemaOf.name}`,
    data: encodeEnvelope(env),
    headers: { "Nats-Msg-Id": env.id },
    deliveryCount: 1,
    seq: ++seq,
    msgId: env.id,
  };
}

async function rows(sql: string): Promise<string[]> {
  const { rows: r } = await pool.query<{ k: string }>(sql);
  return r.map((x) => x.k).sort();
}

const deliveries = () => rows("SELECT event_id || '>' || subscription_id AS k FROM deliveries");
const attempts = () => rows("SELECT event_id || '>' || subscription_id AS k FROM delivery_attempts");
const storedEvents = () => rows("SELECT id AS k FROM events");
const wrote = async () =>
  (
    await rows(
      `SELECT 'd' || count(*) AS k FROM deliveries UNION ALL SELECT 'a' || count(*) FROM delivery_attempts
     UNION ALL SELECT 'e' || count(*) FROM events UNION ALL SELECT 'o' || count(*) FROM alert_occurrences
     UNION ALL SELECT 's' || count(*) FROM alert_state`,
    )
  ).join(" ");

function consumerOver(cache: SubscriptionCache) {
  let woken = 0;
  const o = { pool, registry, subscriptions: cache, onDeliveries: () => woken++ };
  return { ingest: (msgs: ConsumedMessage[]) => ingestMessages(o, msgs), woken: () => woken };
}

describe("event consumption", () => {
  it("spends no query and writes nothing for events that concern no subscription", async () => {
    await subscribe("p1", ["ProjectCreated"]);
    await subscribe("", ["Project*"]);
    await subscribe("p1", ["*"], {
      kind: AlertKind.AGENT_LOST,
      threshold: 2,
      windowMs: 60_000,
      cooldownMs: 0,
    });
    const cache = new SubscriptionCache({ pool, refreshMs: 60_000, logger });
    const { ingest, woken } = consumerOver(cache);
    await cache.current();
    const before = checkouts;
    const batch = [
      message(RunStartedSchema, { runId: "r1" }, "p1"), // no pattern admits it
      message(AgentRegisteredSchema, {}, "p1"), // the alert rule counts AgentLost only
      message(AgentLostSchema, { agentId: "g1" }, "p2"), // the alert subscription is p1's
      message(RunStartedSchema, { runId: "r2" }, ""),
    ];
    await ingest(batch);
    for (const m of batch) await ingest([m]); // the per-message path, too
    expect(checkouts - before).toBe(0);
    expect(woken()).toBe(0);
    expect(await wrote()).toBe("a0 d0 e0 o0 s0");
  });

  it("creates exactly the expected deliveries for a mixed batch, once, also when it comes again", async () => {
    const s1 = await subscribe("p1", ["ProjectCreated"]);
    const s2 = await subscribe("", ["Project*"]);
    const s3 = await subscribe("p2", ["*"]);
    const lost = await subscribe("p1", ["*"], {
      kind: AlertKind.AGENT_LOST,
      threshold: 2,
      windowMs: 60_000,
      cooldownMs: 60_000,
    });
    const cache = new SubscriptionCache({ pool, refreshMs: 60_000, logger });
    const { ingest, woken } = consumerOver(cache);
    const t = Date.now() - 10_000;
    const e1 = message(ProjectCreatedSchema, { projectId: "p1" }, "p1");
    const e2 = message(ProjectUpdatedSchema, { projectId: "p2" }, "p2");
    const e3 = message(RunStartedSchema, { runId: "r1" }, "p3");
    const l1 = message(AgentLostSchema, { agentId: "g1" }, "p1", { occurredAtMs: t });
    const l2 = message(AgentLostSchema, { agentId: "g2" }, "p1", { occurredAtMs: t + 1_000 });
    const l3 = message(AgentLostSchema, { agentId: "g3" }, "p1", { occurredAtMs: t + 2_000 });
    const batch = [e1, e2, e3, l1, l2, l3, e1];
    await ingest(batch);
    const expected = [
      `${e1.id}>${s1}`,
      `${e1.id}>${s2}`,
      `${e2.id}>${s2}`,
      `${e2.id}>${s3}`,
      `${l2.id}>${lost}`,
    ];
    expect(await deliveries()).toEqual(expected.sort());
    expect(await attempts()).toEqual(expected);
    expect(await storedEvents()).toEqual([e1.id, e2.id, l2.id].sort());
    expect(woken()).toBe(1);
    // Redelivered as a batch, then message by message (a failed batch's fallback): nothing more.
    await ingest([l3, e2, e1, l2, l1]);
    for (const m of batch) await ingest([m]);
    expect(await deliveries()).toEqual(expected);
    expect(await attempts()).toEqual(expected);
    expect(await rows("SELECT count(*)::text AS k FROM alert_firings")).toEqual(["1"]);
    expect(woken()).toBe(1);
  });

  it("re-matches a batch against fresh rows when another replica changed subscriptions", async () => {
    const gone = await subscribe("p1", ["ProjectCreated"]);
    const stays = await subscribe("", ["ProjectCreated"]);
    const cache = new SubscriptionCache({ pool, refreshMs: 60_000, logger });
    const { ingest } = consumerOver(cache);
    await cache.current();
    // Through the store, not this cache's owner: as another replica would, unseen by `cache`.
    await deleteSubscription(pool, gone);
    const added = await subscribe("p1", ["ProjectCreated"]);
    const e = message(ProjectCreatedSchema, { projectId: "p1" }, "p1");
    await ingest([e]); // matches `stays` in the stale index, so the transaction checks the count
    expect(await deliveries()).toEqual([`${e.id}>${stays}`, `${e.id}>${added}`].sort());
  });

  it("sees another replica's change within the refresh interval, and its own at once", async () => {
    const cache = new SubscriptionCache({ pool, refreshMs: 100, logger });
    await cache.start();
    try {
      const { ingest } = consumerOver(cache);
      const other = await subscribe("p1", ["RunStarted"]); // another replica: only the count tells
      await eventually(
        "the index to pick up the new subscription",
        async () => {
          const index = await cache.current();
          return index.candidates("p1", "codex.events.v1.RunStarted").plain.length === 1;
        },
        5_000,
      );
      const own = await subscribe("p1", ["ProjectCreated"]);
      cache.changed(); // what this replica's handlers do after committing
      const e1 = message(RunStartedSchema, { runId: "r1" }, "p1");
      const e2 = message(ProjectCreatedSchema, { projectId: "p1" }, "p1");
      await ingest([e2]); // matches only `own`: found because the index reloaded, not by the count check
      await ingest([e1]);
      expect(await deliveries()).toEqual([`${e1.id}>${other}`, `${e2.id}>${own}`].sort());
    } finally {
      cache.stop();
    }
  });
});
