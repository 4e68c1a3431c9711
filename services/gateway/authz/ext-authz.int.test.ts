/**
 * The gateway's ext_authz server as Envoy calls it: every CheckRequest is built and every
 * CheckResponse read with Envoy's own protos (the v3 API shipped in @grpc/grpc-js-xds), over a
 * real gRPC connection, in front of the real project service, API keys in Postgres and GCRA in
 * Redis. That both proves our proto subset is Envoy's wire format and exercises the decisions.
 */
import {
  create,
  createRegistry,
  type DescMessage,
  fromBinary,
  fromJson,
  type JsonObject,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import { credentials, Client as GrpcClient, type ServiceError as GrpcError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyService } from "../../../gen/codex/gateway/v1/api_key_service_pb.js";
import { MemberRole, PrincipalType } from "../../../gen/codex/project/v1/member_pb.js";
import {
  GetProjectRequestSchema,
  UpdateProjectRequestSchema,
} from "../../../gen/codex/project/v1/project_pb.js";
import { ProjectService } from "../../../gen/codex/project/v1/project_service_pb.js";
import { file_google_rpc_error_details } from "../../../gen/google/rpc/error_details_pb.js";
import { Code } from "../../../mesh/errors.js";
import { createClient } from "../../../mesh/grpc/client.js";
import { PRINCIPAL_HEADER, verifyPrincipal } from "../../../mesh/principal-token.js";
import { TEST_MESH_SECRET } from "../../../test/support/harness.js";
import { type AuthStack, startAuthStack } from "../auth/test-stack.js";
import { loadEnvoyRegistry } from "../envoy/envoy-registry.js";

const CHECK = "/envoy.service.auth.v3.Authorization/Check";

interface Header {
  header: { key: string; value: string };
}
interface CheckAnswer {
  status?: { code?: number; message?: string; details?: { "@type": string; reason?: string }[] };
  okResponse?: { headers?: Header[]; headersToRemove?: string[]; responseHeadersToAdd?: Header[] };
  deniedResponse?: { status?: { code?: string }; headers?: Header[]; body?: string };
}

/** A gRPC message with its 5-byte length prefix, as Envoy buffers a gRPC request body. */
function framed<D extends DescMessage>(schema: D, init: Parameters<typeof create<D>>[1]): string {
  const payload = toBinary(schema, create(schema, init));
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(payload.length, 1);
  return Buffer.concat([prefix, payload]).toString("base64");
}

const headerOf = (list: Header[] | undefined, key: string) =>
  list?.find((h) => h.header.key === key)?.header.value;

describe("ext_authz server for the Envoy front door", () => {
  let s: AuthStack;
  let envoy: GrpcClient;
  let projectId: string;
  const envoyProtos = loadEnvoyRegistry();
  // Envoy's types plus the google.rpc details our refusals carry in status.details.
  const registry = createRegistry(envoyProtos.registry, file_google_rpc_error_details);
  const requestSchema = envoyProtos.registry.getMessage("envoy.service.auth.v3.CheckRequest");
  const responseSchema = envoyProtos.registry.getMessage("envoy.service.auth.v3.CheckResponse");
  if (!requestSchema || !responseSchema) throw new Error("Envoy's ext_authz protos are not loaded");

  /** Sends what Envoy's ext_authz filter sends for one request; returns the answer as Envoy reads it. */
  function check(http: {
    path: string;
    headers?: Record<string, string>;
    body?: string;
    extensions?: Record<string, string>;
  }): Promise<CheckAnswer> {
    const json: JsonObject = {
      attributes: {
        source: { address: { socketAddress: { address: "203.0.113.7", portValue: 51234 } } },
        destination: { address: { socketAddress: { address: "10.0.0.5", portValue: 8080 } } },
        request: {
          time: new Date().toISOString(),
          http: {
            id: "1785237442",
            method: "POST",
            headers: {
              ":authority": "api.codex.dev",
              ":method": "POST",
              ":path": http.path,
              "content-type": "application/grpc",
              te: "trailers",
              ...http.headers,
            },
            path: http.path,
            host: "api.codex.dev",
            scheme: "https",
            protocol: "HTTP/2",
            size: "-1",
            ...(http.body !== undefined ? { rawBody: http.body } : {}),
          },
        },
        contextExtensions: http.extensions ?? {},
        metadataContext: {},
      },
    };
    const request = fromJson(requestSchema!, json, { registry });
    return new Promise((resolve, reject) => {
      envoy.makeUnaryRequest(
        CHECK,
        (m: Uint8Array) => Buffer.from(m),
        (b: Buffer) => fromBinary(responseSchema!, b),
        toBinary(requestSchema!, request),
        (err: GrpcError | null, res?: unknown) => {
          try {
            if (err || res === undefined) throw err ?? new Error("no answer");
            resolve(toJson(responseSchema!, res as never, { registry }) as CheckAnswer);
          } catch (e) {
            reject(e);
          }
        },
      );
    });
  }
  const bearer = async (sub: string, claims: Record<string, unknown> = {}) => ({
    authorization: `Bearer ${await s.issuer.mint({ sub, ...claims })}`,
  });

  beforeAll(async () => {
    s = await startAuthStack({ RATE_LIMIT_WRITE: "2/m", AUTH_MEMBERSHIP_CACHE_TTL: "0" });
    envoy = new GrpcClient(s.gateway.running.address, credentials.createInsecure());
    const owner = s.project.client(ProjectService, { type: "user", id: "olivia" });
    projectId = (await owner.createProject({ project: { name: "ext-authz" } })).project?.id ?? "";
    await owner.addMember({
      projectId,
      member: { principalId: "victor", principalType: PrincipalType.USER, role: MemberRole.VIEWER },
    });
  });
  afterAll(async () => {
    envoy?.close();
    await s?.cleanup();
  });

  const getProject = "/codex.project.v1.ProjectService/GetProject";
  const updateProject = "/codex.project.v1.ProjectService/UpdateProject";

  it("lets a member through with a signed principal the services accept, and strips credentials", async () => {
    const answer = await check({
      path: getProject,
      headers: { ...(await bearer("victor")), "x-request-id": "req-ext-1" },
      body: framed(GetProjectRequestSchema, { projectId }),
    });
    expect(answer.status?.code ?? 0).toBe(Code.OK);
    const ok = answer.okResponse;
    const token = headerOf(ok?.headers, PRINCIPAL_HEADER) ?? "";
    const principal = verifyPrincipal(token, TEST_MESH_SECRET);
    expect(principal).toMatchObject({ type: "user", id: "victor", projectRoles: { [projectId]: "viewer" } });
    expect(headerOf(ok?.headers, "x-request-id")).toBe("req-ext-1");
    expect(headerOf(ok?.headers, "traceparent")).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    expect(ok?.headersToRemove).toEqual(expect.arrayContaining(["authorization", "x-api-key"]));
    expect(headerOf(ok?.responseHeadersToAdd, "x-request-id")).toBe("req-ext-1");
    expect(headerOf(ok?.responseHeadersToAdd, "x-ratelimit-limit")).toBe("600");

    // What Envoy then forwards: the project service takes the minted principal as the caller.
    const upstream = createClient(ProjectService, {
      address: s.project.running.address,
      retry: false,
      breaker: false,
    });
    try {
      const res = await upstream.getProject({ projectId }, { headers: { [PRINCIPAL_HEADER]: token } });
      expect(res.project?.id).toBe(projectId);
    } finally {
      upstream.close();
    }
  });

  it("accepts a project's API key (which jwt_authn lets through untouched) and strips it upstream", async () => {
    // Created on the gateway's own server, not through its front door: no rate-limit token used.
    const { secret } = await s.gateway
      .client(ApiKeyService, { type: "user", id: "olivia" })
      .createApiKey({ projectId, apiKey: { displayName: "ext-authz", role: MemberRole.VIEWER } });
    const answer = await check({
      path: getProject,
      headers: { "x-api-key": secret },
      body: framed(GetProjectRequestSchema, { projectId }),
    });
    expect(answer.status?.code ?? 0).toBe(Code.OK);
    const principal = verifyPrincipal(
      headerOf(answer.okResponse?.headers, PRINCIPAL_HEADER) ?? "",
      TEST_MESH_SECRET,
    );
    expect(principal?.type).toBe("api_key");
    expect(answer.okResponse?.headersToRemove).toContain("x-api-key");
    // The key is bound to its project.
    const elsewhere = await check({
      path: getProject,
      headers: { "x-api-key": secret },
      body: framed(GetProjectRequestSchema, { projectId: "another-project" }),
    });
    expect(elsewhere.status?.code).toBe(Code.PERMISSION_DENIED);
    expect(elsewhere.status?.details?.map((d) => d.reason)).toContain("API_KEY_PROJECT");
  });

  it("refuses missing or forged credentials with UNAUTHENTICATED and 401", async () => {
    const none = await check({ path: getProject, body: framed(GetProjectRequestSchema, { projectId }) });
    expect(none.status?.code).toBe(Code.UNAUTHENTICATED);
    expect(none.okResponse).toBeUndefined();
    expect(none.deniedResponse?.status?.code).toBe("Unauthorized");
    expect(headerOf(none.deniedResponse?.headers, "x-request-id")).toMatch(/.+/);
    const forged = await check({
      path: getProject,
      headers: { authorization: "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJvbGl2aWEifQ." },
      body: framed(GetProjectRequestSchema, { projectId }),
    });
    expect(forged.status?.code).toBe(Code.UNAUTHENTICATED);
  });

  it("refuses a viewer's change with PERMISSION_DENIED, 403 and, for REST callers, the JSON error body", async () => {
    const change = {
      path: updateProject,
      headers: await bearer("victor"),
      body: framed(UpdateProjectRequestSchema, {
        project: { id: projectId, description: "nope" },
        updateMask: { paths: ["description"] },
      }),
    };
    const grpc = await check(change);
    expect(grpc.status?.code).toBe(Code.PERMISSION_DENIED);
    expect(grpc.status?.details?.map((d) => d.reason)).toContain("ROLE_REQUIRED");
    expect(grpc.deniedResponse?.status?.code).toBe("Forbidden");
    expect(grpc.deniedResponse?.body).toMatch(/requires MAINTAINER/);

    // The transcoder leaves the REST path in x-envoy-original-path: that caller gets JSON.
    const rest = await check({
      ...change,
      headers: { ...change.headers, "x-envoy-original-path": `/v1/projects/${projectId}` },
    });
    expect(headerOf(rest.deniedResponse?.headers, "content-type")).toBe("application/json");
    const body = JSON.parse(rest.deniedResponse?.body ?? "{}") as {
      code: number;
      details: { reason?: string }[];
    };
    expect(body.code).toBe(Code.PERMISSION_DENIED);
    expect(body.details.map((d) => d.reason)).toContain("ROLE_REQUIRED");

    // Another project is checked against the principal's roles there (none).
    const other = await check({
      path: getProject,
      headers: await bearer("victor"),
      body: framed(GetProjectRequestSchema, { projectId: "not-victors-project" }),
    });
    expect(other.status?.code).toBe(Code.PERMISSION_DENIED);
  });

  it("rate-limits per client with RESOURCE_EXHAUSTED, 429, Retry-After and X-RateLimit-Remaining", async () => {
    const auth = await bearer("olivia");
    const update = (n: number) =>
      check({
        path: updateProject,
        headers: auth,
        body: framed(UpdateProjectRequestSchema, {
          project: { id: projectId, description: `v${n}` },
          updateMask: { paths: ["description"] },
        }),
      });
    const first = await update(1);
    expect(first.status?.code ?? 0).toBe(Code.OK);
    expect(headerOf(first.okResponse?.responseHeadersToAdd, "x-ratelimit-remaining")).toBe("1");
    expect((await update(2)).status?.code ?? 0).toBe(Code.OK);
    const limited = await update(3);
    expect(limited.status?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(limited.deniedResponse?.status?.code).toBe("TooManyRequests");
    expect(headerOf(limited.deniedResponse?.headers, "x-ratelimit-remaining")).toBe("0");
    expect(Number(headerOf(limited.deniedResponse?.headers, "retry-after"))).toBeGreaterThanOrEqual(29);
  });

  it("checks streams without a body: agents may open Connect, people may not", async () => {
    const connect = "/codex.agentmanager.v1.AgentManagerService/Connect";
    const person = await check({ path: connect, headers: await bearer("olivia") });
    expect(person.status?.code).toBe(Code.PERMISSION_DENIED);
    expect(person.status?.details?.map((d) => d.reason)).toContain("AGENT_ONLY");
    const agent = await check({
      path: connect,
      headers: await bearer("agent-1", { codex_principal_type: "agent" }),
    });
    expect(agent.status?.code ?? 0).toBe(Code.OK);
    expect(
      verifyPrincipal(headerOf(agent.okResponse?.headers, PRINCIPAL_HEADER) ?? "", TEST_MESH_SECRET),
    ).toMatchObject({
      type: "agent",
      id: "agent-1",
    });
  });

  it("fails closed on a missing or malformed unary body and on unknown or internal methods", async () => {
    const auth = await bearer("victor");
    const noBody = await check({ path: getProject, headers: auth });
    expect(noBody.status?.code).toBe(Code.FAILED_PRECONDITION);
    expect(noBody.status?.details?.map((d) => d.reason)).toContain("EXT_AUTHZ_BODY_MISSING");
    const garbage = Buffer.concat([Buffer.from([0, 0, 0, 0, 3]), Buffer.from([0xff, 0xff, 0xff])]);
    const malformed = await check({ path: getProject, headers: auth, body: garbage.toString("base64") });
    expect(malformed.status?.code).toBe(Code.INVALID_ARGUMENT);
    const truncated = Buffer.from([0, 0, 0, 0, 9, 1]).toString("base64");
    expect((await check({ path: getProject, headers: auth, body: truncated })).status?.code).toBe(
      Code.INVALID_ARGUMENT,
    );
    const unknown = await check({ path: "/codex.project.v1.ProjectService/Nope", headers: auth });
    expect(unknown.status?.code).toBe(Code.UNIMPLEMENTED);
    expect(unknown.deniedResponse?.status?.code).toBe("NotImplemented");
  });
});
