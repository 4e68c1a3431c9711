/**
 * Test support for the audit service's integration tests: builds realistic event envelopes and
 * publishes them the way the outbox relay does (envelope id as `Nats-Msg-Id`), and waits for
 * the trail to catch up. Not imported by production code.
 */
import { randomUUID } from "node:crypto";
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { anyPack, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { JetStreamClient } from "@nats-io/jetstream";
import type pg from "pg";
import { ActorType, type EventEnvelope, EventEnvelopeSchema } from "../../gen/codex/events/v1/envelope_pb.js";
import type { Principal } from "../../mesh/context.js";
import { encodeEnvelope } from "../../mesh/events/envelope.js";
import { publish } from "../../mesh/nats/publisher.js";
import type { Subjects } from "../../mesh/nats/subjects.js";
import { eventually } from "../../mesh/nats/testing.js";
import { startTestService, type TestService } from "../../test/support/harness.js";
import type { auditConfigSpec } from "./config.js";
import { auditService } from "./service.js";

export type AuditTestService = TestService<typeof auditConfigSpec>;

/** Starts the audit service through the shared harness (own schema and subject prefix). */
export async function startAudit(
  opts: { prefix?: string; schema?: string; env?: Record<string, string> } = {},
): Promise<AuditTestService> {
  return startTestService(auditService, opts);
}

/** Envelope metadata a test controls; everything else gets realistic defaults. */
export interface EventInit {
  aggregateType: string;
  aggregateId: string;
  projectId?: string;
  actorId?: string;
  correlationId?: string;
  /** Epoch milliseconds. */
  occurredAtMs?: number;
  version?: number;
  id?: string;
  source?: string;
}

/** An envelope around `payload`, as a service would publish it. */
export function envelopeOf<Desc extends DescMessage>(
  schema: Desc,
  payload: MessageInitShape<Desc>,
  init: EventInit,
): EventEnvelope {
  return create(EventEnvelopeSchema, {
    id: init.id ?? randomUUID(),
    type: schema.typeName,
    aggregateType: init.aggregateType,
    aggregateId: init.aggregateId,
    aggregateVersion: BigInt(init.version ?? 0),
    projectId: init.projectId ?? "",
    occurredAt: timestampFromMs(init.occurredAtMs ?? Date.now()),
    actor: { type: ActorType.USER, id: init.actorId ?? "alice", displayName: "Alice" },
    correlationId: init.correlationId ?? randomUUID(),
    trace: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" },
    payload: anyPack(schema, create(schema, payload)),
    source: init.source ?? "test",
  });
}

/** Publishes a domain event on `<prefix>.events.<aggregate>.<Type>` with its id as msg id. */
export async function publishEvent(
  js: JetStreamClient,
  subjects: Subjects,
  env: EventEnvelope,
  msgId: string = env.id,
): Promise<void> {
  const name = env.type.slice(env.type.lastIndexOf(".") + 1);
  await publish(js, subjects.event(env.aggregateType, name), encodeEnvelope(env), { msgId });
}

/** Publishes a system event on `<prefix>.system.<Type>`. */
export async function publishSystemEvent(js: JetStreamClient, subjects: Subjects, env: EventEnvelope) {
  const name = env.type.slice(env.type.lastIndexOf(".") + 1);
  await publish(js, subjects.system(name), encodeEnvelope(env), { msgId: env.id });
}

/** Number of records in the trail. */
export async function countRecords(pool: pg.Pool, where = "true", params: unknown[] = []): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM audit_records WHERE ${where}`,
    params,
  );
  return rows[0]?.n ?? 0;
}

/** Waits until the given events are all in the trail. */
export async function waitForEvents(
  pool: pg.Pool,
  ids: readonly string[],
  timeoutMs = 15_000,
): Promise<void> {
  await eventually(
    `${ids.length} events recorded`,
    async () => (await countRecords(pool, "event_id = ANY($1::text[])", [ids])) === ids.length,
    timeoutMs,
  );
}

/** Principals the tests call as. */
const user = (id: string, projectId: string, role: string): Principal => ({
  type: "user",
  id,
  projectRoles: { [projectId]: role },
});
export const principals = {
  admin: { type: "service", id: "ops-console" } satisfies Principal,
  owner: (projectId: string) => user("olivia", projectId, "OWNER"),
  maintainer: (projectId: string) => user("mia", projectId, "MAINTAINER"),
  viewer: (projectId: string) => user("victor", projectId, "VIEWER"),
  apiKey: (projectId: string): Principal => ({
    type: "api_key",
    id: "key-1",
    projectRoles: { [projectId]: "OWNER" },
  }),
};
