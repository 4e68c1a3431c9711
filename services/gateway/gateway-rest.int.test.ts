import { toJson } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetProjectResponseSchema } from "../../gen/codex/project/v1/project_pb.js";
import { ProjectService } from "../../gen/codex/project/v1/project_service_pb.js";
import { createClient } from "../../mesh/grpc/client.js";
import { rest } from "./testing/harness.js";
import { type ProjectStack, startProjectStack } from "./testing/project-stack.js";
import { bearer } from "./testing/test-security.js";

let stack: ProjectStack;
const alice = bearer("alice");
const call = (method: string, path: string, opts: Parameters<typeof rest>[3] = {}) =>
  rest(stack.gw.httpUrl, method, path, { auth: alice, ...opts });
const unique = (p: string) => `${p}-${Math.random().toString(36).slice(2, 8)}`;

async function createProject(name = unique("proj")): Promise<Record<string, string>> {
  const res = await call("POST", "/v1/projects", {
    body: { name, displayName: "Demo", labels: { team: "core" } },
  });
  expect(res.status).toBe(200);
  return res.json.project as Record<string, string>;
}

beforeAll(async () => {
  stack = await startProjectStack({ gatewayEnv: { GATEWAY_MAX_BODY_BYTES: "2048" } });
});
afterAll(async () => stack?.cleanup());

describe("REST bridge over the real Project service", () => {
  it("returns the same data as gRPC through the gateway", async () => {
    const project = await createProject();
    const viaRest = await call("GET", `/v1/projects/${project.id}`);
    const grpc = createClient(ProjectService, {
      address: stack.gw.grpcAddress,
      retry: false,
      breaker: false,
    });
    try {
      const viaGrpc = await grpc.getProject(
        { projectId: project.id! },
        { headers: { authorization: alice } },
      );
      expect(viaRest.status).toBe(200);
      expect(viaRest.json).toEqual(toJson(GetProjectResponseSchema, viaGrpc, { alwaysEmitImplicit: true }));
      expect(viaRest.json.project).toMatchObject({
        displayName: "Demo",
        labels: { team: "core" },
        createdBy: "alice",
      });
    } finally {
      grpc.close();
    }
  });

  it("maps a body field plus path and query (PATCH /v1/projects/{project.id}?update_mask=…)", async () => {
    const p = await createProject();
    const res = await call("PATCH", `/v1/projects/${p.id}?update_mask=display_name`, {
      body: { displayName: "Renamed", etag: p.etag },
    });
    expect(res.status).toBe(200);
    expect(res.json.project).toMatchObject({ id: p.id, displayName: "Renamed" });
  });

  it("maps custom verbs with body '*' (POST …:archive)", async () => {
    const p = await createProject();
    const res = await call("POST", `/v1/projects/${p.id}:archive`, {
      body: { etag: p.etag, reason: "done" },
    });
    expect(res.status).toBe(200);
    expect(res.json.project).toMatchObject({ state: "PROJECT_STATE_ARCHIVED" });
  });

  it("maps query parameters: maps, enums, prefixes, page sizes", async () => {
    const name = unique("query");
    await createProject(name);
    const res = await call(
      "GET",
      `/v1/projects?name_prefix=${name}&labels[team]=core&state=PROJECT_STATE_ACTIVE&pageSize=5`,
    );
    expect(res.status).toBe(200);
    expect((res.json.projects as { name: string }[]).map((p) => p.name)).toEqual([name]);
    const none = await call("GET", `/v1/projects?name_prefix=${name}&labels[team]=other`);
    expect(none.json.projects).toEqual([]);
  });

  it("writes 64-bit integers as strings, and binds them from paths (additional bindings)", async () => {
    const p = await createProject();
    const submitted = await call("POST", `/v1/projects/${p.id}/vision`, {
      body: { problem: "agents need a boss" },
    });
    expect(submitted.status).toBe(200);
    expect((submitted.json.vision as { version: unknown }).version).toBe("1");
    const byVersion = await call("GET", `/v1/projects/${p.id}/vision/versions/1`);
    expect(byVersion.json.vision).toMatchObject({ version: "1", problem: "agents need a boss" });
  });

  it("refuses unknown JSON fields and malformed JSON with 400 and BadRequest details", async () => {
    const unknown = await call("POST", "/v1/projects", { body: { name: "x-y-z", nmae: "typo" } });
    expect(unknown.status).toBe(400);
    expect(unknown.json).toMatchObject({
      code: 3,
      details: [
        { "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ field: "nmae" }] },
      ],
    });
    const malformed = await call("POST", "/v1/projects", { rawBody: "{not json" });
    expect(malformed.status).toBe(400);
    expect(malformed.json.code).toBe(3);
  });
});

describe("REST errors: {code, message, details} with grpc-gateway statuses", () => {
  it("400 from the upstream's validation, details passed through", async () => {
    const res = await call("POST", "/v1/projects", { body: { name: "Not A Name!" } });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: 3, details: [{ fieldViolations: [{ field: "project.name" }] }] });
    expect(typeof res.json.message).toBe("string");
  });

  it("401 without credentials", async () => {
    const res = await rest(stack.gw.httpUrl, "GET", "/v1/projects");
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ code: 16, details: [{ reason: "UNAUTHENTICATED" }] });
  });

  it("403 from the gateway's authorizer and from the upstream's roles", async () => {
    stack.security.authorizer.denied.add("mallory");
    const byGateway = await call("GET", "/v1/projects", { auth: bearer("mallory") });
    expect(byGateway.status).toBe(403);
    expect(byGateway.json).toMatchObject({ code: 7, details: [{ reason: "TEST_DENIED" }] });
    const p = await createProject();
    const added = await call("POST", `/v1/projects/${p.id}/members`, {
      body: { principalId: "carol", principalType: "PRINCIPAL_TYPE_USER", role: "MEMBER_ROLE_VIEWER" },
    });
    expect(added.status).toBe(200);
    const byUpstream = await call("PATCH", `/v1/projects/${p.id}?update_mask=display_name`, {
      auth: bearer("carol"),
      body: { displayName: "x" },
    });
    expect(byUpstream.status).toBe(403);
    expect(byUpstream.json).toMatchObject({ code: 7, details: [{ reason: "ROLE_REQUIRED" }] });
  });

  it("404 for a missing resource and for an unknown path; 405 for a known path", async () => {
    const missing = await call("GET", "/v1/projects/00000000-0000-0000-0000-000000000000");
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({
      code: 5,
      details: [{ "@type": "type.googleapis.com/google.rpc.ResourceInfo" }],
    });
    expect((await call("GET", "/v2/nothing")).status).toBe(404);
    const wrong = await call("PUT", "/v1/projects");
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toContain("POST");
  });

  it("409 for a taken name (ALREADY_EXISTS) and a stale etag (ABORTED)", async () => {
    const p = await createProject();
    const taken = await call("POST", "/v1/projects", { body: { name: p.name } });
    expect(taken.status).toBe(409);
    expect(taken.json.code).toBe(6);
    const stale = await call("PATCH", `/v1/projects/${p.id}?update_mask=display_name`, {
      body: { displayName: "x", etag: "W/stale" },
    });
    expect(stale.status).toBe(409);
    expect(stale.json).toMatchObject({ code: 10, details: [{ reason: "ETAG_MISMATCH" }] });
  });

  it("429 with Retry-After and rate-limit headers, QuotaFailure and RetryInfo", async () => {
    stack.security.rateLimiter.limits.set("user:limited", 1);
    const ok = await call("GET", "/v1/projects", { auth: bearer("limited") });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-ratelimit-remaining")).toBe("0");
    const refused = await call("GET", "/v1/projects", { auth: bearer("limited") });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("30");
    expect(refused.headers.get("x-ratelimit-limit")).toBe("1");
    expect(refused.json).toMatchObject({
      code: 8,
      details: [
        { "@type": "type.googleapis.com/google.rpc.QuotaFailure" },
        { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "30s" },
      ],
    });
  });

  it("413 for a body over the limit", async () => {
    const res = await call("POST", "/v1/projects", { body: { name: "big", description: "x".repeat(4096) } });
    expect(res.status).toBe(413);
    expect(res.json).toMatchObject({ code: 8 });
  });
});

describe("request ids over REST", () => {
  it("accepts a well-formed id, returns it, and the upstream uses it as the events' correlation id", async () => {
    const id = `req-${Date.now()}.a:b`;
    const res = await call("POST", "/v1/projects", {
      body: { name: unique("rid") },
      headers: { "x-request-id": id },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe(id);
    expect(await stack.eventCorrelationIds()).toContain(id);
  });

  it("replaces a malformed id with a generated one, on errors too", async () => {
    const res = await call("GET", "/v1/projects/none", { headers: { "x-request-id": "bad id!" } });
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const anon = await rest(stack.gw.httpUrl, "GET", "/v1/projects");
    expect(anon.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers /healthz and /readyz", async () => {
    expect((await rest(stack.gw.httpUrl, "GET", "/healthz")).status).toBe(200);
    expect((await rest(stack.gw.httpUrl, "GET", "/readyz")).json).toEqual({ status: "ok" });
  });
});
