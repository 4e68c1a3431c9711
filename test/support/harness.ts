import { randomBytes } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import type { ConfigSpec } from "../../mesh/config.js";
import type { Principal } from "../../mesh/context.js";
import { createClient } from "../../mesh/grpc/client.js";
import type { ServiceClient } from "../../mesh/grpc/types.js";
import { connectNats } from "../../mesh/nats/connection.js";
import { deleteStreams } from "../../mesh/nats/streams.js";
import { dropSchema } from "../../mesh/postgres/migrations.js";
import { createPool } from "../../mesh/postgres/pool.js";
import { type RunningService, type ServiceDefinition, startService } from "../../mesh/service-host.js";

export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://root@127.0.0.1:5432/test";
export const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const TEST_MESH_SECRET = "test-mesh-secret";

/** A name no other test run uses: lowercase letters and digits, safe for schemas and subjects. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
}

/** Environment for a service started in-process by a test: free ports, own schema and subjects. */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    MESH_SECRET: TEST_MESH_SECRET,
    PORT: "0",
    METRICS_PORT: "0",
    LOG_LEVEL: "warn",
    DATABASE_URL,
    NATS_URL,
    REDIS_URL,
    ...overrides,
  };
}

/** A service running in this process for a test, and what it takes to clean up after it. */
export interface TestService<S extends ConfigSpec> {
  running: RunningService<S>;
  schema: string;
  prefix: string;
  /** A typed client calling as `principal` (signed like the gateway does). */
  client<D extends DescService>(service: D, principal?: Principal): ServiceClient<D>;
  /** Stops the service, drops its schema and deletes its streams. */
  cleanup(): Promise<void>;
}

/**
 * Starts a service exactly as main.ts does, but on a free port with its own database schema and
 * NATS subject prefix, so test files never see each other's data.
 */
export async function startTestService<S extends ConfigSpec>(
  def: ServiceDefinition<S>,
  opts: { prefix?: string; schema?: string; env?: Record<string, string> } = {},
): Promise<TestService<S>> {
  const prefix = opts.prefix ?? uniqueName("t");
  const schema = opts.schema ?? uniqueName(def.name.replaceAll("-", "_"));
  const running = await startService(
    def,
    testEnv({ DB_SCHEMA: schema, NATS_SUBJECT_PREFIX: prefix, ...opts.env }),
  );
  const clients: { close(): void }[] = [];
  return {
    running,
    schema,
    prefix,
    client: (service, principal) => {
      const c = createClient(service, {
        address: running.address,
        principalSecret: TEST_MESH_SECRET,
        ...(principal ? { defaultPrincipal: principal } : {}),
        retry: false,
        breaker: false,
      });
      clients.push(c);
      return c;
    },
    cleanup: async () => {
      for (const c of clients) c.close();
      await running.stop("test finished");
      await dropTestSchema(schema);
      await deleteTestStreams(prefix);
    },
  };
}

/** Drops a schema a test created. */
export async function dropTestSchema(schema: string): Promise<void> {
  const pool = createPool({ url: DATABASE_URL, schema: "public" });
  try {
    await dropSchema(pool, schema);
  } finally {
    await pool.end();
  }
}

/** Deletes the streams of a test's subject prefix. */
export async function deleteTestStreams(prefix: string): Promise<void> {
  const nc = await connectNats({ servers: NATS_URL, name: "test-cleanup" });
  try {
    await deleteStreams(await jetstreamManager(nc), prefix);
  } finally {
    await nc.close();
  }
}
