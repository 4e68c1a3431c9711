/**
 * TEST ONLY. The real gateway with its real security parts (createGatewaySecurity) in front of
 * the real project service, each in-process on free ports with its own schema, subject prefix
 * and Redis key prefix — so tests see real memberships, real API keys in Postgres and real
 * GCRA state in Redis. Calls go through the gateway's front doors like a client's would.
 */
import type { DescService } from "@bufbuild/protobuf";
import { createClient } from "../../../mesh/grpc/client.js";
import type { CallOptions, ServiceClient } from "../../../mesh/grpc/types.js";
import { createRedis } from "../../../mesh/redis.js";
import { REDIS_URL, type TestService, uniqueName } from "../../../test/support/harness.js";
import { projectService } from "../../project/service.js";
import { productionGateway } from "../service.js";
import { startUpstream } from "../testing/harness.js";
import { createTestIssuer, type TestIssuer } from "./testing.js";

export interface AuthStack {
  readonly issuer: TestIssuer;
  readonly project: TestService<never>;
  readonly gateway: TestService<never>;
  /** `127.0.0.1:<port>` of the gRPC front door. */
  readonly grpcAddress: string;
  /** `http://127.0.0.1:<port>` of the REST front door. */
  readonly httpUrl: string;
  /** A client of the gRPC front door sending no credentials of its own. */
  client<S extends DescService>(service: S): ServiceClient<S>;
  /** Call options presenting a JWT for `sub` (extra claims merged in). */
  asUser(sub: string, claims?: Record<string, unknown>): Promise<CallOptions>;
  /** Call options presenting an API key. */
  withKey(secret: string): CallOptions;
  cleanup(): Promise<void>;
}

/** Starts project service + gateway; `env` is added to the gateway's environment. */
export async function startAuthStack(env: Record<string, string> = {}): Promise<AuthStack> {
  const issuer = await createTestIssuer("ES256");
  // One subject prefix for both, as in production: the gateway hears the project's events.
  const prefix = uniqueName("tauth");
  const project = await startUpstream(projectService, { prefix });
  const rateLimitPrefix = `${uniqueName("gwrl")}:`;
  // Exactly the production wiring (service.ts loads this module's factory, spec and migrations).
  const def = await productionGateway();
  const gateway = await startUpstream(def, {
    prefix,
    env: issuer.env({
      GATEWAY_GRPC_PORT: "0",
      GATEWAY_HTTP_PORT: "0",
      PROJECT_ADDR: project.running.address,
      RATE_LIMIT_KEY_PREFIX: rateLimitPrefix,
      ...env,
    }),
  });
  const clients: { close(): void }[] = [];
  const grpcAddress = `127.0.0.1:${def.frontDoors.grpcPort}`;
  return {
    issuer,
    project: project as unknown as TestService<never>,
    gateway: gateway as unknown as TestService<never>,
    grpcAddress,
    httpUrl: `http://127.0.0.1:${def.frontDoors.httpPort}`,
    client(service) {
      const c = createClient(service, { address: grpcAddress, retry: false, breaker: false });
      clients.push(c);
      return c;
    },
    async asUser(sub, claims = {}) {
      return { headers: { authorization: `Bearer ${await issuer.mint({ sub, ...claims })}` } };
    },
    withKey: (secret) => ({ headers: { "x-api-key": secret } }),
    async cleanup() {
      for (const c of clients) c.close();
      await gateway.cleanup();
      await project.cleanup();
      const redis = createRedis(REDIS_URL, { name: "auth-stack-cleanup" });
      try {
        const keys = await redis.keys(`${rateLimitPrefix}*`);
        if (keys.length > 0) await redis.del(...keys);
      } finally {
        redis.disconnect();
      }
    },
  };
}
