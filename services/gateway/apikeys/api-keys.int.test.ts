import { createHash, randomUUID } from "node:crypto";
import { fromBinary, toJsonString } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventEnvelopeSchema } from "../../../gen/codex/events/v1/envelope_pb.js";
import { ApiKeyState } from "../../../gen/codex/gateway/v1/api_key_pb.js";
import { ApiKeyService } from "../../../gen/codex/gateway/v1/api_key_service_pb.js";
import { AuthMethod, IdentityService } from "../../../gen/codex/gateway/v1/identity_service_pb.js";
import { MemberRole, PrincipalType } from "../../../gen/codex/project/v1/member_pb.js";
import { ProjectService } from "../../../gen/codex/project/v1/project_service_pb.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import type { ServiceClient } from "../../../mesh/grpc/types.js";
import { createPool } from "../../../mesh/postgres/pool.js";
import { DATABASE_URL } from "../../../test/support/harness.js";
import { type AuthStack, startAuthStack } from "../auth/test-stack.js";
import { purgeExpiredRequestIds } from "./idempotency.js";

async function failure(p: Promise<unknown>, code: Code): Promise<ServiceError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${Code[code]}`).toBeInstanceOf(ServiceError);
  expect(Code[(err as ServiceError).code]).toBe(Code[code]);
  return err as ServiceError;
}

describe("API keys through the gateway's gRPC front door", () => {
  let s: AuthStack;
  let keys: ServiceClient<typeof ApiKeyService>;
  let projects: ServiceClient<typeof ProjectService>;
  let identity: ServiceClient<typeof IdentityService>;
  let p1: string;
  let p2: string;
  const owner = () => s.asUser("alice", { name: "Alice" });

  beforeAll(async () => {
    // Memberships read fresh on every call, so demotions and removals show at once.
    s = await startAuthStack({ AUTH_MEMBERSHIP_CACHE_TTL: "0" });
    keys = s.client(ApiKeyService);
    projects = s.client(ProjectService);
    identity = s.client(IdentityService);
    p1 = (await projects.createProject({ project: { name: "keys-one" } }, await owner())).project?.id ?? "";
    p2 = (await projects.createProject({ project: { name: "keys-two" } }, await owner())).project?.id ?? "";
    const add = async (principalId: string, role: MemberRole) =>
      projects.addMember(
        { projectId: p1, member: { principalId, principalType: PrincipalType.USER, role } },
        await owner(),
      );
    await add("bob", MemberRole.MAINTAINER);
    await add("carol", MemberRole.VIEWER);
    await add("dave", MemberRole.OWNER);
  });
  afterAll(async () => {
    await s?.cleanup();
  });

  const createKey = async (init: Record<string, unknown> = {}, as?: Awaited<ReturnType<typeof owner>>) =>
    keys.createApiKey(
      {
        projectId: p1,
        apiKey: { displayName: `key-${randomUUID().slice(0, 8)}`, role: MemberRole.MAINTAINER, ...init },
      },
      as ?? (await owner()),
    );

  it("creates a key whose secret works once shown, and is stored only as a hash", async () => {
    const res = await createKey({ displayName: "ci-main", requestsPerMinute: 600 });
    const key = res.apiKey!;
    expect(res.secret).toMatch(/^cdx_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(res.secret.startsWith(key.keyPrefix)).toBe(true);
    expect(key).toMatchObject({
      projectId: p1,
      state: ApiKeyState.ACTIVE,
      createdBy: "alice",
      requestsPerMinute: 600,
    });
    expect(Number(key.expireTime!.seconds) * 1000 - Date.now()).toBeGreaterThan(89 * 86_400_000);

    const me = await identity.whoAmI({}, s.withKey(res.secret));
    expect(me).toMatchObject({ principalId: key.id, authMethod: AuthMethod.API_KEY, platformAdmin: false });
    expect(me.projectRoles).toEqual([
      expect.objectContaining({ projectId: p1, role: MemberRole.MAINTAINER, projectName: "keys-one" }),
    ]);
    expect(me.apiKey?.id).toBe(key.id);
    expect((await projects.getProject({ projectId: p1 }, s.withKey(res.secret))).project?.name).toBe(
      "keys-one",
    );

    const pool = createPool({ url: DATABASE_URL, schema: s.gateway.schema });
    try {
      const { rows } = await pool.query("SELECT * FROM api_keys WHERE id = $1", [key.id]);
      expect(rows[0].secret_sha256).toEqual(createHash("sha256").update(res.secret).digest());
      expect(JSON.stringify(rows[0])).not.toContain(res.secret.slice(17));
      const events = await pool.query<{ subject: string; payload: Buffer }>(
        "SELECT subject, payload FROM outbox",
      );
      const created = events.rows.filter((r) => r.subject.endsWith(".events.api_key.ApiKeyCreated"));
      expect(created.length).toBeGreaterThan(0);
      for (const e of events.rows) {
        expect(e.payload.toString("latin1")).not.toContain(res.secret.slice(17));
        expect(fromBinary(EventEnvelopeSchema, e.payload).source).toBe("gateway");
      }
    } finally {
      await pool.end();
    }
  });

  it("refuses a key on another project, outside its scopes and on key management", async () => {
    const { secret } = await createKey({ scopes: ["codex.project.v1.ProjectService/GetProject"] });
    const denied = await failure(
      projects.getProject({ projectId: p2 }, s.withKey(secret)),
      Code.PERMISSION_DENIED,
    );
    expect(denied.reason).toBe("API_KEY_PROJECT");
    const scope = await failure(
      projects.listMembers({ projectId: p1 }, s.withKey(secret)),
      Code.PERMISSION_DENIED,
    );
    expect(scope.reason).toBe("API_KEY_SCOPE");
    const open = await createKey();
    await failure(keys.listApiKeys({ projectId: p1 }, s.withKey(open.secret)), Code.PERMISSION_DENIED);
  });

  it("lists keys without secrets, to maintainers only, newest first with pages", async () => {
    const a = await createKey({ displayName: "list-a" });
    const b = await createKey({ displayName: "list-b" });
    const first = await keys.listApiKeys({ projectId: p1, pageSize: 1 }, await s.asUser("bob"));
    expect(first.apiKeys.map((k) => k.id)).toEqual([b.apiKey?.id]);
    const second = await keys.listApiKeys(
      { projectId: p1, pageSize: 1, pageToken: first.nextPageToken },
      await s.asUser("bob"),
    );
    expect(second.apiKeys.map((k) => k.id)).toEqual([a.apiKey?.id]);
    const all = await keys.listApiKeys({ projectId: p1, pageSize: 500 }, await owner());
    const text = toJsonString(ApiKeyService.method.listApiKeys.output, all);
    expect(text).not.toContain(a.secret);
    expect(text).not.toContain(b.secret.slice(17));
    await failure(keys.listApiKeys({ projectId: p1 }, await s.asUser("carol")), Code.PERMISSION_DENIED);
    await failure(
      keys.listApiKeys({ projectId: p1, pageToken: "garbage" }, await owner()),
      Code.INVALID_ARGUMENT,
    );
    const got = await keys.getApiKey({ projectId: p1, apiKeyId: a.apiKey!.id }, await s.asUser("bob"));
    expect(got.apiKey?.keyPrefix).toBe(a.apiKey?.keyPrefix);
    await failure(keys.getApiKey({ projectId: p2, apiKeyId: a.apiKey!.id }, await owner()), Code.NOT_FOUND);
  });

  it("only owners create keys, never OWNER keys, with valid names, scopes and expiry", async () => {
    await failure(createKey({}, await s.asUser("bob")), Code.PERMISSION_DENIED);
    const bad = await failure(createKey({ role: MemberRole.OWNER }), Code.INVALID_ARGUMENT);
    expect(bad.message).toMatch(/invalid API key/);
    await failure(createKey({ scopes: ["not a scope"] }), Code.INVALID_ARGUMENT);
    await failure(createKey({ expireTime: timestampFromMs(Date.now() - 1000) }), Code.INVALID_ARGUMENT);
    await failure(
      createKey({ expireTime: timestampFromMs(Date.now() + 400 * 86_400_000) }),
      Code.INVALID_ARGUMENT,
    );
    await createKey({ displayName: "dup" });
    await failure(createKey({ displayName: "dup" }), Code.INVALID_ARGUMENT);
  });

  it("replays a create with the same request_id without showing the secret again", async () => {
    const requestId = randomUUID();
    const req = { projectId: p1, requestId, apiKey: { displayName: "replayed", role: MemberRole.VIEWER } };
    const first = await keys.createApiKey(req, await owner());
    const again = await keys.createApiKey(req, await owner());
    expect(again.apiKey?.id).toBe(first.apiKey?.id);
    expect(first.secret).not.toBe("");
    expect(again.secret).toBe("");
    await failure(
      keys.createApiKey({ ...req, apiKey: { ...req.apiKey, displayName: "other" } }, await owner()),
      Code.INVALID_ARGUMENT,
    );
  });

  it("forgets request ids after 24 hours, and sweeps them", async () => {
    const requestId = randomUUID();
    const req = { projectId: p1, requestId, apiKey: { displayName: "aged", role: MemberRole.VIEWER } };
    const first = await keys.createApiKey(req, await owner());
    const pool = createPool({ url: DATABASE_URL, schema: s.gateway.schema });
    try {
      await pool.query(
        "UPDATE idempotency_keys SET create_time = now() - interval '25 hours' WHERE request_id = $1",
        [requestId],
      );
      await keys.revokeApiKey({ projectId: p1, apiKeyId: first.apiKey!.id }, await owner());
      const second = await keys.createApiKey(req, await owner());
      expect(second.apiKey?.id).not.toBe(first.apiKey?.id);
      expect(second.secret).not.toBe("");
      await pool.query("UPDATE idempotency_keys SET create_time = now() - interval '25 hours'");
      expect(await purgeExpiredRequestIds(pool, new Date())).toBeGreaterThan(0);
      expect((await pool.query("SELECT 1 FROM idempotency_keys")).rowCount).toBe(0);
    } finally {
      await pool.end();
    }
  });

  it("revokes at once: the key is refused, and cannot be revoked twice", async () => {
    const { apiKey, secret } = await createKey();
    await failure(
      keys.revokeApiKey({ projectId: p1, apiKeyId: apiKey!.id, etag: "stale" }, await owner()),
      Code.ABORTED,
    );
    await failure(
      keys.revokeApiKey({ projectId: p1, apiKeyId: apiKey!.id }, await s.asUser("bob")),
      Code.PERMISSION_DENIED,
    );
    const res = await keys.revokeApiKey(
      { projectId: p1, apiKeyId: apiKey!.id, etag: apiKey!.etag, reason: "leaked" },
      await owner(),
    );
    expect(res.apiKey).toMatchObject({
      state: ApiKeyState.REVOKED,
      revokedBy: "alice",
      revokeReason: "leaked",
    });
    const refused = await failure(
      projects.getProject({ projectId: p1 }, s.withKey(secret)),
      Code.UNAUTHENTICATED,
    );
    expect(refused.message).toMatch(/revoked/);
    await failure(
      keys.revokeApiKey({ projectId: p1, apiKeyId: apiKey!.id }, await owner()),
      Code.FAILED_PRECONDITION,
    );
    const revoked = await keys.listApiKeys({ projectId: p1, state: ApiKeyState.REVOKED }, await owner());
    expect(revoked.apiKeys.map((k) => k.id)).toContain(apiKey!.id);
  });

  it("caps a key by its creator: demoted with them, refused when they leave", async () => {
    const dave = await s.asUser("dave");
    const { secret } = await createKey({ role: MemberRole.MAINTAINER }, dave);
    await projects.updateProject(
      { project: { id: p1, description: "by key" }, updateMask: { paths: ["description"] } },
      s.withKey(secret),
    );
    await projects.updateMemberRole(
      { projectId: p1, principalId: "dave", role: MemberRole.VIEWER },
      await owner(),
    );
    const demoted = await failure(
      projects.updateProject(
        { project: { id: p1, description: "again" }, updateMask: { paths: ["description"] } },
        s.withKey(secret),
      ),
      Code.PERMISSION_DENIED,
    );
    expect(demoted.reason).toBe("ROLE_REQUIRED");
    expect((await projects.getProject({ projectId: p1 }, s.withKey(secret))).project?.id).toBe(p1);
    await projects.removeMember({ projectId: p1, principalId: "dave" }, await owner());
    const gone = await failure(
      projects.getProject({ projectId: p1 }, s.withKey(secret)),
      Code.PERMISSION_DENIED,
    );
    expect(gone.reason).toBe("API_KEY_NO_ROLE");
  });

  it("refuses expired, malformed and unknown keys with UNAUTHENTICATED", async () => {
    const { secret } = await createKey({ expireTime: timestampFromMs(Date.now() + 1_500) });
    expect((await projects.getProject({ projectId: p1 }, s.withKey(secret))).project?.id).toBe(p1);
    await new Promise((r) => setTimeout(r, 3_000));
    expect(
      (await failure(projects.getProject({ projectId: p1 }, s.withKey(secret)), Code.UNAUTHENTICATED))
        .message,
    ).toMatch(/expired/);
    await failure(projects.getProject({ projectId: p1 }, s.withKey("cdx_nothing")), Code.UNAUTHENTICATED);
    const forged = `${secret.slice(0, 17)}${"A".repeat(43)}`;
    expect((await failure(identity.whoAmI({}, s.withKey(forged)), Code.UNAUTHENTICATED)).message).toBe(
      "unknown API key",
    );
  });

  it("tells users who they are, with roles and the admin flag", async () => {
    const me = await identity.whoAmI({}, await s.asUser("bob"));
    expect(me).toMatchObject({ principalId: "bob", authMethod: AuthMethod.JWT, platformAdmin: false });
    expect(me.projectRoles).toEqual([
      expect.objectContaining({ projectId: p1, role: MemberRole.MAINTAINER, projectName: "keys-one" }),
    ]);
    expect(Number(me.expireTime?.seconds)).toBeGreaterThan(Date.now() / 1000);
    const admin = await identity.whoAmI({}, await s.asUser("root", { codex_admin: true }));
    expect(admin.platformAdmin).toBe(true);
    await failure(identity.whoAmI({}), Code.UNAUTHENTICATED);
  });
});
