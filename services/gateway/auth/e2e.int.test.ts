/**
 * End to end through both front doors of the real gateway (real auth, API keys, GCRA in Redis)
 * in front of the real project service: 401, 403 and 429 with their headers, over REST and gRPC.
 */
import type { Metadata } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyService } from "../../../gen/codex/gateway/v1/api_key_service_pb.js";
import { MemberRole, PrincipalType } from "../../../gen/codex/project/v1/member_pb.js";
import { ProjectService } from "../../../gen/codex/project/v1/project_service_pb.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import type { ServiceClient } from "../../../mesh/grpc/types.js";
import { type AuthStack, startAuthStack } from "./test-stack.js";
import { mintUnsigned } from "./testing.js";

describe("gateway auth end to end", () => {
  let s: AuthStack;
  let projects: ServiceClient<typeof ProjectService>;
  let projectId: string;
  let otherProjectId: string;
  let otherKey: string;
  const bearer = async (sub: string, claims: Record<string, unknown> = {}) =>
    `Bearer ${await s.issuer.mint({ sub, ...claims })}`;

  beforeAll(async () => {
    s = await startAuthStack({ RATE_LIMIT_WRITE: "3/m", AUTH_MEMBERSHIP_CACHE_TTL: "0" });
    projects = s.client(ProjectService);
    // Set up behind the gateway's back (straight to the project service), so no bucket is used.
    const direct = s.project.client(ProjectService, { type: "user", id: "olivia" });
    projectId = (await direct.createProject({ project: { name: "e2e-main" } })).project?.id ?? "";
    const oscar = s.project.client(ProjectService, { type: "user", id: "oscar" });
    otherProjectId = (await oscar.createProject({ project: { name: "e2e-other" } })).project?.id ?? "";
    await direct.addMember({
      projectId,
      member: { principalId: "victor", principalType: PrincipalType.USER, role: MemberRole.VIEWER },
    });
    await direct.addMember({
      projectId,
      member: { principalId: "agent-9", principalType: PrincipalType.AGENT, role: MemberRole.AGENT },
    });
    const created = await s
      .client(ApiKeyService)
      .createApiKey(
        { projectId: otherProjectId, apiKey: { displayName: "other", role: MemberRole.MAINTAINER } },
        await s.asUser("oscar"),
      );
    otherKey = created.secret;
  });
  afterAll(async () => {
    await s?.cleanup();
  });

  const rest = (
    path: string,
    init: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
  ) =>
    fetch(`${s.httpUrl}${path}`, {
      method: init.method ?? "GET",
      headers: { "content-type": "application/json", ...(init.headers ?? {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });

  async function grpcFailure(
    p: Promise<unknown>,
    code: Code,
  ): Promise<{ err: ServiceError; trailers: Metadata }> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ServiceError);
    expect(Code[(err as ServiceError).code]).toBe(Code[code]);
    return {
      err: err as ServiceError,
      trailers: ((err as ServiceError).cause as { metadata: Metadata }).metadata,
    };
  }

  describe("REST front door", () => {
    it("answers 401 without, with expired, forged or unsigned credentials", async () => {
      const none = await rest(`/v1/projects/${projectId}`);
      expect(none.status).toBe(401);
      expect(await none.json()).toMatchObject({
        code: Code.UNAUTHENTICATED,
        message: expect.stringMatching(/credentials required/),
      });
      const now = Math.floor(Date.now() / 1000);
      const expired = await s.issuer.mint({ sub: "olivia" }, { iat: now - 600, exp: now - 300 });
      expect(
        (await rest(`/v1/projects/${projectId}`, { headers: { authorization: `Bearer ${expired}` } })).status,
      ).toBe(401);
      const unsigned = mintUnsigned({ sub: "olivia" });
      expect(
        (await rest(`/v1/projects/${projectId}`, { headers: { authorization: `Bearer ${unsigned}` } }))
          .status,
      ).toBe(401);
      expect(
        (await rest(`/v1/projects/${projectId}`, { headers: { "x-api-key": "cdx_000000000000_nope" } }))
          .status,
      ).toBe(401);
    });

    it("lets a viewer read (with rate-limit headers) and answers 403 to its changes", async () => {
      const auth = { authorization: await bearer("victor") };
      const ok = await rest(`/v1/projects/${projectId}`, { headers: auth });
      expect(ok.status).toBe(200);
      expect(ok.headers.get("x-ratelimit-limit")).toBe("600");
      expect(Number(ok.headers.get("x-ratelimit-remaining"))).toBeLessThan(600);
      const denied = await rest(`/v1/projects/${projectId}?update_mask=description`, {
        method: "PATCH",
        headers: auth,
        body: { description: "nope" },
      });
      expect(denied.status).toBe(403);
      const body = (await denied.json()) as { details: { reason?: string }[] };
      expect(body.details.map((d) => d.reason)).toContain("ROLE_REQUIRED");
    });

    it("answers 403 to another project's key and to agent credentials on user RPCs", async () => {
      const key = await rest(`/v1/projects/${projectId}`, { headers: { "x-api-key": otherKey } });
      expect(key.status).toBe(403);
      const agent = { authorization: await bearer("agent-9", { codex_principal_type: "agent" }) };
      expect((await rest(`/v1/projects/${projectId}`, { headers: agent })).status).toBe(200);
      const patch = await rest(`/v1/projects/${projectId}?update_mask=description`, {
        method: "PATCH",
        headers: agent,
        body: { description: "agent edit" },
      });
      expect(patch.status).toBe(403);
      expect(
        (await rest("/v1/projects", { method: "POST", headers: agent, body: { name: "by-agent" } })).status,
      ).toBe(403);
    });

    it("answers 429 with Retry-After and X-RateLimit-Remaining once the write bucket is empty", async () => {
      const auth = { authorization: await bearer("olivia") };
      const update = (n: number) =>
        rest(`/v1/projects/${projectId}?update_mask=description`, {
          method: "PATCH",
          headers: auth,
          body: { description: `v${n}` },
        });
      const remaining: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await update(i);
        expect(r.status).toBe(200);
        remaining.push(r.headers.get("x-ratelimit-remaining") ?? "");
      }
      expect(remaining).toEqual(["2", "1", "0"]);
      const limited = await update(9);
      expect(limited.status).toBe(429);
      expect(limited.headers.get("x-ratelimit-remaining")).toBe("0");
      const retryAfter = Number(limited.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThanOrEqual(19); // 60 s / 3 per minute = 20 s
      expect(retryAfter).toBeLessThanOrEqual(20);
      // Reads have their own bucket.
      expect((await rest(`/v1/projects/${projectId}`, { headers: auth })).status).toBe(200);
    });
  });

  describe("gRPC front door", () => {
    it("UNAUTHENTICATED without credentials, PERMISSION_DENIED for a viewer's change", async () => {
      await grpcFailure(projects.getProject({ projectId }), Code.UNAUTHENTICATED);
      const viewer = { headers: { authorization: await bearer("victor") } };
      expect((await projects.getProject({ projectId }, viewer)).project?.id).toBe(projectId);
      const { err } = await grpcFailure(
        projects.updateProject(
          { project: { id: projectId, description: "x" }, updateMask: { paths: ["description"] } },
          viewer,
        ),
        Code.PERMISSION_DENIED,
      );
      expect(err.reason).toBe("ROLE_REQUIRED");
    });

    it("RESOURCE_EXHAUSTED with RetryInfo and rate-limit trailers", async () => {
      const auth = { headers: { authorization: await bearer("grpc-writer") } };
      // Three creates fill the write bucket of a fresh client; the fourth is refused.
      for (let i = 0; i < 3; i++) await projects.createProject({ project: { name: `e2e-grpc-${i}` } }, auth);
      const { err, trailers } = await grpcFailure(
        projects.createProject({ project: { name: "e2e-grpc-x" } }, auth),
        Code.RESOURCE_EXHAUSTED,
      );
      expect(err.retryAfterMs).toBeGreaterThan(15_000);
      expect(trailers.get("x-ratelimit-remaining")).toEqual(["0"]);
      expect(Number(trailers.get("retry-after")[0])).toBeGreaterThanOrEqual(19);
    });
  });
});
