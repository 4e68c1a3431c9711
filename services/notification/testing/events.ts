import { randomBytes, randomUUID } from "node:crypto";
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { anyPack, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { JetStreamClient } from "@nats-io/jetstream";
import {
  ActorType,
  type EventEnvelope,
  EventEnvelopeSchema,
} from "../../../gen/codex/events/v1/envelope_pb.js";
import { encodeEnvelope } from "../../../mesh/events/envelope.js";
import { publish } from "../../../mesh/nats/publisher.js";
import { subjectsFor } from "../../../mesh/nats/subjects.js";

/** Builds an envelope as a producing service would. */
export function envelopeOf<D extends DescMessage>(
  schema: D,
  payload: MessageInitShape<D>,
  o: { aggregateType: string; aggregateId: string; projectId?: string; occurredAtMs?: number; id?: string },
): EventEnvelope {
  return create(EventEnvelopeSchema, {
    id: o.id ?? randomUUID(),
    type: schema.typeName,
    aggregateType: o.aggregateType,
    aggregateId: o.aggregateId,
    projectId: o.projectId ?? "",
    occurredAt: timestampFromMs(o.occurredAtMs ?? Date.now()),
    actor: { type: ActorType.USER, id: "alice", displayName: "Alice" },
    correlationId: randomUUID(),
    payload: anyPack(schema, create(schema, payload)),
    source: "test",
  });
}

/** Publishes an envelope to `<prefix>.events.<aggregate>.<Type>` with its id as the msg id. */
export async function publishEvent(js: JetStreamClient, prefix: string, env: EventEnvelope): Promise<void> {
  const name = env.type.slice(env.type.lastIndexOf(".") + 1);
  await publish(js, subjectsFor(prefix).event(env.aggregateType, name), encodeEnvelope(env), {
    msgId: env.id,
  });
}

/** A fresh base64 AES-256 key, as NOTIFICATION_ENCRYPTION_KEY holds it. */
export function testKey(): string {
  return randomBytes(32).toString("base64");
}

/** Service settings for tests: local http receivers allowed, fast polling, small backoff. */
export function notificationTestEnv(over: Record<string, string> = {}): Record<string, string> {
  return {
    NOTIFICATION_ENCRYPTION_KEY: testKey(),
    WEBHOOK_ALLOW_HTTP: "true",
    WEBHOOK_ALLOW_PRIVATE_TARGETS: "true",
    SLACK_ALLOWED_HOSTS: "127.0.0.1,hooks.slack.com",
    WORKER_POLL_INTERVAL: "50ms",
    DELIVERY_BACKOFF_BASE: "50ms",
    DELIVERY_BACKOFF_CAP: "200ms",
    DELIVERY_TIMEOUT: "2s",
    DELIVERY_LEASE: "3s",
    CONSUMER_ACK_WAIT: "5s",
    ...over,
  };
}
