/**
 * People's side of the end-to-end tests: typed clients through the gateway's gRPC front door,
 * each call carrying a user's JWT (HS256, signed with the stack's secret) exactly as a CLI or
 * CI system would send it.
 */
import type { DescService } from "@bufbuild/protobuf";
import { SignJWT } from "jose";
import { AgentManagerService } from "../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { ProjectService } from "../../gen/codex/project/v1/project_service_pb.js";
import { SchedulerService } from "../../gen/codex/scheduler/v1/scheduler_service_pb.js";
import { WorkItemService } from "../../gen/codex/workitem/v1/workitem_service_pb.js";
import { createClient } from "../../mesh/grpc/client.js";
import type { ServiceClient } from "../../mesh/grpc/types.js";
import { JWT, type ProcessStack } from "./process-stack.js";

export async function userToken(stack: ProcessStack, subject: string, claims: Record<string, unknown> = {}) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(subject)
    .setIssuer(JWT.issuer)
    .setAudience(JWT.audience)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(stack.jwtSecret));
}

/** Wraps a client so every call sends `headers` (the mesh client takes headers per call). */
function withHeaders<S extends DescService>(
  client: ServiceClient<S>,
  headers: Record<string, string>,
): ServiceClient<S> {
  return new Proxy(client, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== "function" || key === "close") return value;
      return (req: unknown, opts: { headers?: Record<string, string> } = {}) =>
        (value as (r: unknown, o: unknown) => unknown).call(target, req, {
          ...opts,
          headers: { ...headers, ...opts.headers },
        });
    },
  });
}

export interface Person {
  projects: ServiceClient<typeof ProjectService>;
  items: ServiceClient<typeof WorkItemService>;
  scheduler: ServiceClient<typeof SchedulerService>;
  runs: ServiceClient<typeof AgentManagerService>;
  close(): void;
}

/** A person calling through the gateway. */
export async function person(stack: ProcessStack, subject: string): Promise<Person> {
  const headers = { authorization: `Bearer ${await userToken(stack, subject)}` };
  const opts = { address: stack.gatewayGrpc, retry: false, breaker: false } as const;
  const clients = {
    projects: withHeaders(createClient(ProjectService, opts), headers),
    items: withHeaders(createClient(WorkItemService, opts), headers),
    scheduler: withHeaders(createClient(SchedulerService, opts), headers),
    runs: withHeaders(createClient(AgentManagerService, opts), headers),
  };
  return {
    ...clients,
    close: () => {
      for (const c of Object.values(clients)) c.close();
    },
  };
}

/** Polls `read` until `ok` holds (or throws after `timeoutMs`, naming `what` and the last value). */
export async function until<T>(
  what: string,
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let error: unknown;
  while (Date.now() < deadline) {
    try {
      last = await read();
      if (ok(last)) return last;
    } catch (err) {
      error = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `timed out waiting for ${what}; last value ${String(last)}${error ? `, last error ${String(error)}` : ""}`,
  );
}
