/**
 * TEST ONLY. Starts the gateway (with test security) and upstreams in-process through the same
 * host code path as production, each on free ports.
 */
import type { ConfigSpec } from "../../../mesh/config.js";
import type { ServiceDefinition } from "../../../mesh/service-host.js";
import { startTestService, type TestService } from "../../../test/support/harness.js";
import { freePort } from "../../../test/support/ports.js";
import type { GatewayConfigSpec } from "../config.js";
import type { GatewaySecurity } from "../pipeline/types.js";
import { gatewayService } from "../service.js";

/** An upstream started for a test on a free port. */
export async function startUpstream<S extends ConfigSpec>(
  def: ServiceDefinition<S>,
  opts: { schema?: string; prefix?: string; env?: Record<string, string> } = {},
): Promise<TestService<S>> {
  return startTestService(def, { ...opts, env: { PORT: String(await freePort()), ...opts.env } });
}

/** A gateway under test and the addresses of its front doors. */
export interface TestGateway {
  readonly service: TestService<GatewayConfigSpec>;
  /** `127.0.0.1:<port>` of the gRPC front door. */
  readonly grpcAddress: string;
  /** `http://127.0.0.1:<port>` of the REST front door. */
  readonly httpUrl: string;
  cleanup(): Promise<void>;
}

/** Starts the gateway with the given security parts and upstream address variables. */
export async function startGateway(
  security: GatewaySecurity,
  env: Record<string, string>,
): Promise<TestGateway> {
  const def = gatewayService({ security });
  const service = await startUpstream(def, {
    env: { GATEWAY_GRPC_PORT: "0", GATEWAY_HTTP_PORT: "0", ...env },
  });
  return {
    service,
    grpcAddress: `127.0.0.1:${def.frontDoors.grpcPort}`,
    httpUrl: `http://127.0.0.1:${def.frontDoors.httpPort}`,
    cleanup: () => service.cleanup(),
  };
}

/** The answer to a REST call, body parsed when it is JSON. */
export interface RestAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly json: Record<string, unknown>;
  readonly text: string;
}

/** Calls the REST front door. */
export async function rest(
  baseUrl: string,
  method: string,
  path: string,
  opts: { auth?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<RestAnswer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.auth) headers.authorization = opts.auth;
  let body: string | undefined = opts.rawBody;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["content-type"] = "application/json";
  }
  const res = await fetch(`${baseUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON (a stream or an empty body): callers look at `text`
  }
  return { status: res.status, headers: res.headers, json, text };
}
