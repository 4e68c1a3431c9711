/**
 * TEST ONLY. The real Project service (Postgres, NATS, outbox) behind a gateway with test
 * security: what the REST and gRPC integration tests call through.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { EventEnvelopeSchema } from "../../../gen/codex/events/v1/envelope_pb.js";
import { createPool, quoteSchema } from "../../../mesh/postgres/pool.js";
import type { TestService } from "../../../test/support/harness.js";
import { DATABASE_URL } from "../../../test/support/harness.js";
import { projectService } from "../../project/service.js";
import { startGateway, startUpstream, type TestGateway } from "./harness.js";
import { testSecurity } from "./test-security.js";

export interface ProjectStack {
  readonly replicas: TestService<Record<string, never>>[];
  readonly gw: TestGateway;
  readonly security: ReturnType<typeof testSecurity>;
  /** Correlation ids of the events the Project service staged in its outbox. */
  eventCorrelationIds(): Promise<string[]>;
  cleanup(): Promise<void>;
}

/** Starts `replicas` Project service instances sharing one schema, and a gateway before them. */
export async function startProjectStack(
  opts: { replicas?: number; gatewayEnv?: Record<string, string> } = {},
): Promise<ProjectStack> {
  const first = await startUpstream(projectService);
  const replicas = [first];
  for (let i = 1; i < (opts.replicas ?? 1); i++) {
    replicas.push(await startUpstream(projectService, { schema: first.schema, prefix: first.prefix }));
  }
  const security = testSecurity();
  const gw = await startGateway(security, {
    PROJECT_ADDR: replicas.map((r) => r.running.address).join(","),
    ...opts.gatewayEnv,
  });
  return {
    replicas: replicas as unknown as TestService<Record<string, never>>[],
    gw,
    security,
    async eventCorrelationIds() {
      const pool = createPool({ url: DATABASE_URL, schema: "public" });
      try {
        const rows = await pool.query<{ payload: Buffer }>(
          `SELECT payload FROM ${quoteSchema(first.schema)}.outbox`,
        );
        return rows.rows.map((r) => fromBinary(EventEnvelopeSchema, r.payload).correlationId);
      } finally {
        await pool.end();
      }
    },
    async cleanup() {
      await gw.cleanup();
      for (const r of replicas.slice(1)) await r.running.stop("test finished");
      await first.cleanup();
    },
  };
}
