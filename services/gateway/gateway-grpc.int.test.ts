import {
  type ClientUnaryCall,
  credentials,
  loadPackageDefinition,
  Metadata,
  type ServiceClientConstructor,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService } from "../../gen/codex/audit/v1/audit_service_pb.js";
import { ProjectService } from "../../gen/codex/project/v1/project_service_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Code, ServiceError } from "../../mesh/errors.js";
import { createClient } from "../../mesh/grpc/client.js";
import { PRINCIPAL_HEADER, signPrincipal } from "../../mesh/principal-token.js";
import { checkHealth, listServicesByReflection } from "../../test/support/grpc-probes.js";
import { TEST_MESH_SECRET } from "../../test/support/harness.js";
import { type ProjectStack, startProjectStack } from "./testing/project-stack.js";
import { bearer } from "./testing/test-security.js";

let stack: ProjectStack;
let client: ReturnType<typeof createClient<typeof ProjectService>>;
const as = (user: string, headers: Record<string, string> = {}) => ({
  headers: { authorization: bearer(user), ...headers },
});
const unique = (p: string) => `${p}-${Math.random().toString(36).slice(2, 8)}`;

async function failure(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return ServiceError.from(err);
  }
  throw new Error("expected the call to fail");
}

/** Calls handled by one replica, read from its own metrics registry. */
async function handled(replica: number, method: string): Promise<number> {
  const metric =
    await stack.replicas[replica]!.running.host.metrics.registry.getSingleMetric(
      "grpc_server_handled_total",
    )?.get();
  return (metric?.values ?? [])
    .filter((v) => v.labels.grpc_method === `/codex.project.v1.ProjectService/${method}`)
    .reduce((sum, v) => sum + v.value, 0);
}

type Unary = (
  req: unknown,
  md: Metadata,
  cb: (err: Error | null, res: Record<string, unknown>) => void,
) => ClientUnaryCall;

/** A client built from the .proto files only, as a third party would, that also reads headers. */
function independentCall(method: string, req: unknown, md: Metadata) {
  const def = loadSync("codex/project/v1/project_service.proto", {
    includeDirs: ["proto", "node_modules/google-proto-files"],
    enums: String,
    longs: String,
    defaults: true,
  });
  const pkg = loadPackageDefinition(def) as unknown as {
    codex: { project: { v1: { ProjectService: ServiceClientConstructor } } };
  };
  const c = new pkg.codex.project.v1.ProjectService(
    stack.gw.grpcAddress,
    credentials.createInsecure(),
  ) as unknown as Record<string, Unary> & { close(): void };
  return new Promise<{ res?: Record<string, unknown>; err?: ServiceError; headers: Metadata }>((resolve) => {
    let headers = new Metadata();
    const call = c[method]!(req, md, (err, res) => {
      c.close();
      resolve(err ? { err: ServiceError.from(err), headers } : { res, headers });
    });
    call.on("metadata", (h: Metadata) => {
      headers = h;
    });
  });
}

beforeAll(async () => {
  stack = await startProjectStack({ replicas: 2 });
  client = createClient(ProjectService, { address: stack.gw.grpcAddress, retry: false, breaker: false });
});
afterAll(async () => {
  client?.close();
  await stack?.cleanup();
});

describe("gRPC front door over the real Project service", () => {
  it("balances calls round-robin across the replicas", async () => {
    const { project } = await client.createProject({ project: { name: unique("rr") } }, as("alice"));
    const before = [await handled(0, "GetProject"), await handled(1, "GetProject")];
    for (let i = 0; i < 10; i++) await client.getProject({ projectId: project!.id }, as("alice"));
    const after = [await handled(0, "GetProject"), await handled(1, "GetProject")];
    expect(after[0]! - before[0]!).toBe(5);
    expect(after[1]! - before[1]!).toBe(5);
  });

  it("relays the upstream's status, message and rich details unchanged", async () => {
    const err = await failure(client.createProject({ project: { name: "Bad Name!" } }, as("alice")));
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.findDetail(BadRequestSchema)?.fieldViolations[0]?.field).toBe("project.name");
  });

  it("refuses internal methods at the gateway without reaching the service", async () => {
    const before = (await handled(0, "GetMemberRole")) + (await handled(1, "GetMemberRole"));
    const err = await failure(client.getMemberRole({ projectId: "p", principalId: "alice" }, as("alice")));
    expect(err.code).toBe(Code.PERMISSION_DENIED);
    expect(err.reason).toBe("INTERNAL_METHOD");
    expect((await handled(0, "GetMemberRole")) + (await handled(1, "GetMemberRole"))).toBe(before);
  });

  it("replaces a client-sent principal with the authenticated one", async () => {
    const { project } = await client.createProject({ project: { name: unique("own") } }, as("bob"));
    const forged = signPrincipal({ type: "user", id: "bob" }, TEST_MESH_SECRET);
    const err = await failure(
      client.getProject({ projectId: project!.id }, as("alice", { [PRINCIPAL_HEADER]: forged })),
    );
    expect(err.code).toBe(Code.NOT_FOUND); // alice is no member of bob's project: the forgery was dropped
    const admin = await client.getProject(
      { projectId: project!.id },
      { headers: { authorization: bearer("root", { "*": "admin" }) } },
    );
    expect(admin.project?.createdBy).toBe("bob"); // project roles travel in the signed principal
  });

  it("refuses missing credentials, over-limit clients (with RetryInfo and headers) and unconfigured upstreams", async () => {
    expect((await failure(client.listProjects({}))).code).toBe(Code.UNAUTHENTICATED);
    stack.security.rateLimiter.limits.set("user:grpc-limited", 0);
    const md = new Metadata();
    md.set("authorization", bearer("grpc-limited"));
    const limited = await independentCall("ListProjects", {}, md);
    expect(limited.err?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(limited.err?.retryAfterMs).toBe(30_000);
    expect(limited.headers.get("retry-after")).toEqual(["30"]);
    expect(limited.headers.get("x-ratelimit-limit")).toEqual(["0"]);
    const audit = createClient(AuditService, { address: stack.gw.grpcAddress, retry: false, breaker: false });
    const err = await failure(audit.verifyChain({}, as("alice")));
    audit.close();
    expect(err.code).toBe(Code.UNAVAILABLE);
  });

  it("accepts a request id, returns it, and the service uses it as the events' correlation id", async () => {
    const md = new Metadata();
    md.set("authorization", bearer("alice"));
    md.set("x-request-id", "grpc-req-42");
    const created = await independentCall("CreateProject", { project: { name: unique("rid") } }, md);
    expect(created.err).toBeUndefined();
    expect(created.headers.get("x-request-id")).toEqual(["grpc-req-42"]);
    expect(await stack.eventCorrelationIds()).toContain("grpc-req-42");
    const md2 = new Metadata();
    md2.set("authorization", bearer("alice"));
    md2.set("x-request-id", "not valid!");
    const generated = await independentCall("ListProjects", {}, md2);
    expect(String(generated.headers.get("x-request-id")[0])).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("serves an independent @grpc/proto-loader client, and health and reflection at the front door", async () => {
    const { project } = await client.createProject(
      { project: { name: unique("loader"), labels: { via: "proto" } } },
      as("alice"),
    );
    const md = new Metadata();
    md.set("authorization", bearer("alice"));
    const got = await independentCall("GetProject", { projectId: project!.id }, md);
    expect(got.res?.project).toMatchObject({
      id: project!.id,
      labels: { via: "proto" },
      state: "PROJECT_STATE_ACTIVE",
    });
    expect(await checkHealth(stack.gw.grpcAddress)).toBe("SERVING");
    const services = await listServicesByReflection(stack.gw.grpcAddress);
    expect(services).toEqual(
      expect.arrayContaining(["codex.project.v1.ProjectService", "codex.audit.v1.AuditService"]),
    );
  });
});
