/**
 * Test support for the agent manager's integration tests: starts the real service through the
 * shared harness (own schema, subject prefix and Redis key prefix, fast timings), hands out
 * clients per principal, reads the events it published, and cleans everything up.
 * Not imported by production code.
 */
import { randomBytes } from "node:crypto";
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { AgentManagerService } from "../../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import type { WorkItemSnapshotSchema } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import type { EventEnvelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import { decodeEnvelope, unpackPayload } from "../../../mesh/events/envelope.js";
import type { ServiceClient } from "../../../mesh/grpc/types.js";
import { readStream } from "../../../mesh/nats/testing.js";
import { createPool } from "../../../mesh/postgres/pool.js";
import { createRedis } from "../../../mesh/redis.js";
import { REDIS_URL, startTestService, type TestService } from "../../../test/support/harness.js";
import { freePort } from "../../../test/support/ports.js";
import type { agentManagerConfigSpec } from "../config.js";
import { agentManagerService } from "../service.js";

export type AmClient = ServiceClient<typeof AgentManagerService>;

export const SERVICE: Principal = { type: "service", id: "scheduler" };
export const ADMIN: Principal = { type: "user", id: "root", projectRoles: { "*": "admin" } };

export interface AmHarness {
  readonly t: TestService<typeof agentManagerConfigSpec>;
  readonly redisPrefix: string;
  client(principal?: Principal): AmClient;
  /** Events published so far (from the stream), decoded. */
  events(): Promise<EventEnvelope[]>;
  /** Payloads of one event type published so far. */
  payloads<D extends DescMessage>(schema: D): Promise<MessageShape<D>[]>;
  sql<R extends Record<string, unknown>>(text: string, args?: unknown[]): Promise<R[]>;
  stop(): Promise<void>;
}

/** Fast timings: heartbeat 100 ms, lease 600 ms, offline after 3 missed beats, sweep 25 ms. */
export const FAST_ENV = {
  AGENT_MANAGER_HEARTBEAT_INTERVAL: "100ms",
  AGENT_MANAGER_LEASE_TTL: "600ms",
  AGENT_MANAGER_SWEEP_INTERVAL: "25ms",
  AGENT_MANAGER_CANCEL_GRACE: "60s",
};

export async function startAgentManager(env: Record<string, string> = {}): Promise<AmHarness> {
  const redisPrefix = `t-am-${randomBytes(5).toString("hex")}:`;
  const t = await startTestService(agentManagerService, {
    env: {
      PORT: String(await freePort()),
      AGENT_MANAGER_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      AGENT_MANAGER_REDIS_PREFIX: redisPrefix,
      ...FAST_ENV,
      ...env,
    },
  });
  const pool = createPool({ url: "postgres://root@127.0.0.1:5432/test", schema: t.schema });
  const jsm = t.running.host.nats.jsm;
  const subjects = t.running.host.nats.subjects;
  const events = async () =>
    (await readStream(jsm, subjects.streams.events)).map((m) => decodeEnvelope(m.data));
  return {
    t,
    redisPrefix,
    client: (principal) => t.client(AgentManagerService, principal),
    events,
    async payloads(schema) {
      return (await events())
        .filter((e) => e.type === schema.typeName)
        .map((e) => unpackPayload(e, schema))
        .filter((p): p is NonNullable<typeof p> => p !== undefined);
    },
    async sql(text, args = []) {
      return (await pool.query(text, args)).rows;
    },
    async stop() {
      await pool.end();
      await t.cleanup();
      const redis = createRedis(REDIS_URL);
      const keys = await redis.keys(`${redisPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    },
  };
}

/** A project's people, as the gateway forwards them. */
export function people(projectId: string) {
  return {
    maintainer: { type: "user", id: "bob", projectRoles: { [projectId]: "maintainer" } } as Principal,
    viewer: { type: "user", id: "carol", projectRoles: { [projectId]: "viewer" } } as Principal,
    outsider: { type: "user", id: "mallory", projectRoles: { other: "owner" } } as Principal,
  };
}

/** A work item snapshot for EnqueueRun, with optional recipe tools. */
export function snapshot(
  projectId: string,
  tools: { name: string; version?: string }[] = [],
): MessageInitShape<typeof WorkItemSnapshotSchema> {
  return {
    workItemId: `wi-${randomBytes(4).toString("hex")}`,
    projectId,
    title: "build it",
    description: "run the build",
    ...(tools.length > 0
      ? {
          recipe: {
            tools: tools.map((t) => ({ name: t.name, version: t.version ?? "" })),
          },
        }
      : {}),
  };
}

/** Awaits a call expected to fail with `code`; returns the error. */
export async function failure(call: Promise<unknown>, code: Code): Promise<ServiceError> {
  try {
    await call;
  } catch (err) {
    const e = ServiceError.from(err);
    if (e.code !== code)
      throw new Error(`expected ${Code[code]}, got ${Code[e.code]}: ${e.message}`, { cause: err });
    return e;
  }
  throw new Error(`expected ${Code[code]}, but the call succeeded`);
}

export { Code };
