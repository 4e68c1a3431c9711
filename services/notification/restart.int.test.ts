import { jetstream } from "@nats-io/jetstream";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProjectUpdatedSchema } from "../../gen/codex/events/v1/project_events_pb.js";
import { NotificationService } from "../../gen/codex/notification/v1/notification_service_pb.js";
import type { Principal } from "../../mesh/context.js";
import { connectNats } from "../../mesh/nats/connection.js";
import { eventually } from "../../mesh/nats/testing.js";
import { createPool } from "../../mesh/postgres/pool.js";
import {
  DATABASE_URL,
  NATS_URL,
  startTestService,
  type TestService,
  uniqueName,
} from "../../test/support/harness.js";
import { notificationService } from "./service.js";
import { claimDue } from "./store/deliveries.js";
import { envelopeOf, notificationTestEnv, publishEvent } from "./testing/events.js";
import { HttpReceiver } from "./testing/receivers.js";

const owner: Principal = { type: "user", id: "olga", projectRoles: { p1: "owner" } };
const LEASE_MS = 2_500;
/** Bound of every wait: generous for a loaded CI machine, reached only when the test fails. */
const WAIT_MS = 60_000;
const schema = uniqueName("notification");
const prefix = uniqueName("t");
const env = notificationTestEnv({
  WORKER_CONCURRENCY: "2",
  DELIVERY_TIMEOUT: "1s",
  DELIVERY_LEASE: `${LEASE_MS}ms`,
  CONSUMER_ACK_WAIT: "2s",
  GRACE_MS: "100",
});

let hooks: HttpReceiver;
let svc2: TestService<typeof notificationService.config & object> | undefined;

beforeAll(async () => {
  hooks = await new HttpReceiver().start();
  hooks.responder = () => ({ status: 200, delayMs: 300 });
});

afterAll(async () => {
  await svc2?.cleanup();
  await hooks?.stop();
});

async function countDeliveries(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM deliveries");
  return rows[0]?.n ?? 0;
}

const projectEvent = (i: number) =>
  envelopeOf(
    ProjectUpdatedSchema,
    { projectId: "p1", changedFields: [`f${i}`] },
    { aggregateType: "project", aggregateId: "p1", projectId: "p1" },
  );

describe("stopping and restarting mid-batch", () => {
  it("delivers every event to every subscription, records each exactly once, and honours a dead worker's lease", async () => {
    const svc1 = await startTestService(notificationService, { schema, prefix, env });
    const client = svc1.client(NotificationService, owner);
    for (const path of ["/r1", "/r2"]) {
      await client.createSubscription({
        subscription: {
          projectId: "p1",
          displayName: path,
          eventTypes: ["ProjectUpdated"],
          channel: { case: "webhook", value: { url: `${hooks.url}${path}` } },
        },
      });
    }
    const events = Array.from({ length: 20 }, (_, i) => projectEvent(i));
    for (const e of events) await publishEvent(svc1.running.host.nats.js, prefix, e);
    // Stop mid-batch: the receivers have seen a few sends, and every event has become its two
    // deliveries, so most are still due (the receivers' 300 ms answers let the two worker slots
    // finish about six a second) and the crashed worker below finds five to claim.
    await eventually(
      "a few deliveries sent and every event fanned out",
      async () =>
        hooks.requests.length >= 4 && (await countDeliveries(svc1.running.host.pool)) === 2 * events.length,
      WAIT_MS,
    );
    await svc1.running.stop("test: stop mid-batch"); // in-flight sends are cut off at the 100 ms grace

    // Events keep coming while the service is down.
    const late = Array.from({ length: 5 }, (_, i) => projectEvent(100 + i));
    const nc = await connectNats({ servers: NATS_URL, name: "restart-test" });
    for (const e of late) await publishEvent(jetstream(nc), prefix, e);
    await nc.close();
    const pool = createPool({ url: DATABASE_URL, schema });
    try {
      // A worker that crashed mid-send: it claimed deliveries, sent them (the receivers processed
      // them) and died before recording anything. Its lease runs from the database's clock at the
      // claim, so from no earlier than `claimedFrom` (taken after the claim, a loaded machine's
      // delay would pass for an early resend).
      const claimedFrom = Date.now();
      const crashed = await claimDue(pool, 5, LEASE_MS);
      expect(crashed.length).toBe(5);
      const requestsBefore = hooks.requests.length;
      await Promise.all(
        crashed.map((d) =>
          fetch(d.subscription.channel.type === "webhook" ? d.subscription.channel.url : "", {
            method: "POST",
            headers: { "X-Codex-Delivery-Id": d.id },
            body: "{}",
          }),
        ),
      );

      svc2 = await startTestService(notificationService, { schema, prefix, env });
      const total = 2 * (events.length + late.length);
      await eventually(
        "every delivery succeeded",
        async () => {
          const { rows } = await pool.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM deliveries WHERE state = 'succeeded'",
          );
          return rows[0]?.n === total;
        },
        WAIT_MS,
      );

      // The dead worker's claims were left alone until their lease passed.
      const crashedKeys = new Set(crashed.map((d) => d.id));
      const resent = hooks.requests
        .slice(requestsBefore + crashed.length)
        .filter((r) => crashedKeys.has(String(r.headers["x-codex-delivery-id"])));
      expect(resent.length).toBeGreaterThanOrEqual(5);
      for (const r of resent) expect(r.at).toBeGreaterThanOrEqual(claimedFrom + LEASE_MS);

      const { rows: deliveries } = await pool.query<{
        id: string;
        event_id: string;
        ok: number;
        attempts: number;
      }>(
        `SELECT d.id, d.event_id, d.attempts,
           (SELECT count(*)::int FROM delivery_attempts a WHERE a.delivery_key = d.id AND a.outcome = 'succeeded') AS ok
         FROM deliveries d`,
      );
      expect(deliveries).toHaveLength(total);
      expect(new Set(deliveries.map((d) => d.event_id))).toEqual(
        new Set([...events, ...late].map((e) => e.id)),
      );
      expect(deliveries.every((d) => d.ok === 1)).toBe(true);
      const { rows: dup } = await pool.query(
        "SELECT event_id, subscription_id FROM deliveries GROUP BY 1, 2 HAVING count(*) > 1",
      );
      expect(dup).toHaveLength(0);
      // Receivers saw every delivery; repeats (sent, cut off before recording) carry the same id and are dropped.
      expect(hooks.processed).toEqual(new Set(deliveries.map((d) => d.id)));
      expect(hooks.requests.length).toBeGreaterThanOrEqual(hooks.processed.size + crashed.length);
    } finally {
      await pool.end();
    }
  }, 240_000);
});
