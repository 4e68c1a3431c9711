import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProjectCreatedSchema, ProjectUpdatedSchema } from "../../gen/codex/events/v1/project_events_pb.js";
import { NotificationService } from "../../gen/codex/notification/v1/notification_service_pb.js";
import type { Principal } from "../../mesh/context.js";
import { subjectsFor } from "../../mesh/nats/subjects.js";
import { eventually } from "../../mesh/nats/testing.js";
import { startTestService, type TestService, uniqueName } from "../../test/support/harness.js";
import { notificationService } from "./service.js";
import { envelopeOf, notificationTestEnv, publishEvent } from "./testing/events.js";
import { HttpReceiver } from "./testing/receivers.js";

/**
 * The consumers match events against an in-memory subscription index: a change made through a
 * replica applies to events published after its RPC answered on that replica, and on every
 * replica within SUBSCRIPTION_REFRESH_INTERVAL.
 */
const owner: Principal = { type: "user", id: "olga", projectRoles: { p1: "owner" } };
const REFRESH_MS = 200;
const schema = uniqueName("notification");
const prefix = uniqueName("t");
const env = notificationTestEnv({ SUBSCRIPTION_REFRESH_INTERVAL: `${REFRESH_MS}ms` });

let hooks: HttpReceiver;
type Replica = TestService<typeof notificationService.config & object>;
let a: Replica;
let b: Replica | undefined;

beforeAll(async () => {
  hooks = await new HttpReceiver().start();
  a = await startTestService(notificationService, { schema, prefix, env });
});

afterAll(async () => {
  await b?.running.stop("test finished");
  await a?.cleanup();
  await hooks?.stop();
});

const event = (schemaOf: typeof ProjectCreatedSchema | typeof ProjectUpdatedSchema) =>
  envelopeOf(schemaOf, { projectId: "p1" }, { aggregateType: "project", aggregateId: "p1", projectId: "p1" });

async function deliveriesOf(subscriptionId: string): Promise<string[]> {
  const { rows } = await a.running.host.pool.query<{ event_id: string }>(
    "SELECT event_id FROM deliveries WHERE subscription_id = $1 ORDER BY event_id",
    [subscriptionId],
  );
  return rows.map((r) => r.event_id);
}

const create = async (svc: Replica, path: string, eventTypes: string[]) => {
  const { subscription } = await svc.client(NotificationService, owner).createSubscription({
    subscription: {
      projectId: "p1",
      displayName: path,
      eventTypes,
      channel: { case: "webhook", value: { url: `${hooks.url}${path}` } },
    },
  });
  return subscription!.id;
};

describe("subscription changes and the consumers' index", () => {
  it("honours a subscription for an event published right after it was created", async () => {
    const id = await create(a, "/now", ["ProjectCreated"]);
    const e = event(ProjectCreatedSchema);
    await publishEvent(a.running.host.nats.js, prefix, e);
    await eventually("the delivery to arrive", () => hooks.requests.some((r) => r.path === "/now"), 20_000);
    expect(await deliveriesOf(id)).toEqual([e.id]);
  });

  it("applies a change made through another replica within the refresh interval, on every replica", async () => {
    b = await startTestService(notificationService, { schema, prefix, env });
    const id = await create(b, "/elsewhere", ["ProjectUpdated"]);
    // Past the bound, whichever replica consumes an event knows the subscription.
    await new Promise((resolve) => setTimeout(resolve, 2 * REFRESH_MS + 100));
    const events = Array.from({ length: 10 }, () => event(ProjectUpdatedSchema));
    for (const e of events) await publishEvent(a.running.host.nats.js, prefix, e);
    const ids = events.map((e) => e.id).sort();
    await eventually(
      "every event to become a delivery",
      async () => (await deliveriesOf(id)).length >= 10,
      20_000,
    );
    expect(await deliveriesOf(id)).toEqual(ids);
    // Deleted through b: after the bound, no replica delivers to it any more.
    await b.client(NotificationService, owner).deleteSubscription({ subscriptionId: id });
    await new Promise((resolve) => setTimeout(resolve, 2 * REFRESH_MS + 100));
    const later = event(ProjectUpdatedSchema);
    await publishEvent(a.running.host.nats.js, prefix, later);
    const jsm = await jetstreamManager(a.running.host.nats.nc);
    await eventually(
      "the consumers to have handled it",
      async () => {
        const info = await jsm.consumers.info(subjectsFor(prefix).streams.events, "notification-events");
        return info.delivered.stream_seq > 0 && info.num_pending + info.num_ack_pending === 0;
      },
      20_000,
    );
    expect(await deliveriesOf(id)).toEqual(ids);
  });
});
