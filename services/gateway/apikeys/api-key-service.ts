/**
 * codex.gateway.v1.ApiKeyService, served on the gateway's own gRPC server (the front doors
 * reach it like any upstream, so calls arrive authenticated and with a signed principal).
 */
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type pg from "pg";
import {
  CreateApiKeyRequestSchema,
  type CreateApiKeyResponse,
  CreateApiKeyResponseSchema,
  ListApiKeysResponseSchema,
  RevokeApiKeyRequestSchema,
  RevokeApiKeyResponseSchema,
} from "../../../gen/codex/gateway/v1/api_key_pb.js";
import type { ApiKeyService } from "../../../gen/codex/gateway/v1/api_key_service_pb.js";
import {
  aborted,
  failedPrecondition,
  invalidArgument,
  notFound,
  resourceExhausted,
} from "../../../mesh/errors.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";
import { type PageTokenFormat, pageTokens } from "../../../mesh/pagination/page-token.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import type { MembershipSource } from "../auth/memberships.js";
import { access, callerOf } from "./access.js";
import { etagOf, stateFromProto, toApiKey } from "./convert.js";
import { stageCreated, stageRevoked } from "./events.js";
import { idempotent } from "./idempotency.js";
import { newSecret } from "./secret.js";
import { activeKeys, getKey, insertKey, listKeys, lockProject, revokeKey, stateOf } from "./store.js";
import {
  checkProjectId,
  checkReason,
  checkRequestId,
  LIMITS,
  pageSize,
  Violations,
  validateNewKey,
} from "./validation.js";

/**
 * ListApiKeys tokens name the (create_time, id) cursor's parts `t` and `i`, as first released;
 * kept so tokens clients hold stay valid.
 */
const PAGE_TOKEN_FORMAT: PageTokenFormat = { cursorFields: ["t", "i"] };
const KEY_ID = /^[0-9a-f-]{36}$/;

export interface ApiKeyServiceDeps {
  pool: pg.Pool;
  subjects: Subjects;
  memberships: Pick<MembershipSource, "roleIn">;
  /** Drops a revoked key from this replica's authentication cache at once. */
  forgetKey(lookup: string): void;
  now?: () => Date;
}

export function apiKeyService(deps: ApiKeyServiceDeps): ServiceImpl<typeof ApiKeyService> {
  const clock = deps.now ?? (() => new Date());
  return {
    async createApiKey(req, ctx) {
      const principal = callerOf(ctx);
      requireProject(req.projectId);
      const m = await access(deps.memberships, principal, req.projectId, { role: "owner", admin: false });
      const now = clock();
      const v = new Violations();
      checkRequestId(v, req.requestId);
      const spec = validateNewKey(v, req.apiKey, now);
      v.throwIfAny("invalid API key");
      if (!spec) throw invalidArgument("invalid API key");
      if (m.archived) {
        throw failedPrecondition(`project ${req.projectId} is archived`, [
          { type: "STATE", subject: `projects/${req.projectId}`, description: "project is ARCHIVED" },
        ]);
      }
      const origin = { principal, correlationId: ctx.correlationId, occurredAt: now };
      const call = {
        method: "CreateApiKey",
        requestId: req.requestId,
        input: CreateApiKeyRequestSchema,
        request: req,
        output: CreateApiKeyResponseSchema,
        // A replay returns the key, never the secret again.
        stored: (res: CreateApiKeyResponse) => ({ ...res, secret: "" }),
      };
      return withTransaction(deps.pool, (client) =>
        idempotent(client, principal, now, call, async () => {
          await lockProject(client, req.projectId);
          const active = await activeKeys(client, req.projectId, spec.displayName, now);
          if (active.nameTaken) {
            throw invalidArgument("display_name already used", [
              {
                field: "api_key.display_name",
                description: "is already used by an active key of this project",
              },
            ]);
          }
          if (active.count >= LIMITS.activeKeysPerProject) {
            throw resourceExhausted(`project ${req.projectId} has ${active.count} active API keys`, {
              subject: `project:${req.projectId}`,
              description: `at most ${LIMITS.activeKeysPerProject} active API keys per project; revoke unused ones`,
            });
          }
          const secret = newSecret();
          const row = await insertKey(client, {
            id: randomUUID(),
            projectId: req.projectId,
            ...spec,
            lookup: secret.lookup,
            keyPrefix: secret.keyPrefix,
            secretSha256: secret.hash,
            createdBy: principal.id,
            createTime: now,
            revokedBy: "",
            revokeReason: "",
          });
          await stageCreated(client, deps.subjects, row, origin);
          return create(CreateApiKeyResponseSchema, { apiKey: toApiKey(row, now), secret: secret.secret });
        }),
      );
    },

    async getApiKey(req, ctx) {
      const principal = callerOf(ctx);
      requireProject(req.projectId);
      await access(deps.memberships, principal, req.projectId, { role: "maintainer", admin: true });
      const row = await getKey(deps.pool, req.apiKeyId, req.projectId);
      if (!row) throw notFound("api_key", req.apiKeyId);
      return { apiKey: toApiKey(row, clock()) };
    },

    async listApiKeys(req, ctx) {
      const principal = callerOf(ctx);
      requireProject(req.projectId);
      await access(deps.memberships, principal, req.projectId, { role: "maintainer", admin: true });
      const v = new Violations();
      const limit = pageSize(v, req.pageSize);
      const state = stateFromProto(req.state);
      const pages = pageTokens([req.projectId, state ?? "", req.createdBy], PAGE_TOKEN_FORMAT);
      const cursor = pages.cursorOf(req.pageToken, v, {
        arity: 2,
        valid: ([time, id]) =>
          typeof time === "string" &&
          !Number.isNaN(new Date(time).getTime()) &&
          typeof id === "string" &&
          KEY_ID.test(id),
      });
      const after = cursor ? { createTime: new Date(String(cursor[0])), id: String(cursor[1]) } : undefined;
      v.throwIfAny("invalid list request");
      const now = clock();
      const rows = await listKeys(deps.pool, {
        projectId: req.projectId,
        ...(state ? { state } : {}),
        ...(req.createdBy ? { createdBy: req.createdBy } : {}),
        ...(after ? { after } : {}),
        now,
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return create(ListApiKeysResponseSchema, {
        apiKeys: page.map((r) => toApiKey(r, now)),
        nextPageToken:
          rows.length > limit && last ? pages.encode([last.createTime.toISOString(), last.id]) : "",
      });
    },

    async revokeApiKey(req, ctx) {
      const principal = callerOf(ctx);
      requireProject(req.projectId);
      await access(deps.memberships, principal, req.projectId, { role: "owner", admin: true });
      const v = new Violations();
      if (req.apiKeyId === "") v.add("api_key_id", "is required");
      checkReason(v, req.reason);
      checkRequestId(v, req.requestId);
      v.throwIfAny("invalid revoke request");
      const now = clock();
      const origin = { principal, correlationId: ctx.correlationId, occurredAt: now };
      const call = {
        method: "RevokeApiKey",
        requestId: req.requestId,
        input: RevokeApiKeyRequestSchema,
        request: req,
        output: RevokeApiKeyResponseSchema,
      };
      let lookup: string | undefined;
      const res = await withTransaction(deps.pool, (client) =>
        idempotent(client, principal, now, call, async () => {
          const row = await getKey(client, req.apiKeyId, req.projectId, true);
          if (!row) throw notFound("api_key", req.apiKeyId);
          if (req.etag !== "" && req.etag !== etagOf(row)) throw aborted("the API key changed; re-read it");
          const state = stateOf(row, now);
          if (state !== "active") {
            throw failedPrecondition(
              `API key is already ${state}`,
              [{ type: "STATE", subject: `apiKeys/${row.id}`, description: `key is ${state.toUpperCase()}` }],
              state === "revoked" ? "ALREADY_REVOKED" : "EXPIRED",
            );
          }
          const revoked = await revokeKey(client, row.id, { now, by: principal.id, reason: req.reason });
          lookup = revoked.lookup;
          await stageRevoked(client, deps.subjects, revoked, origin);
          return create(RevokeApiKeyResponseSchema, { apiKey: toApiKey(revoked, now) });
        }),
      );
      if (lookup) deps.forgetKey(lookup);
      return res;
    },
  };
}

function requireProject(projectId: string): void {
  const v = new Violations();
  checkProjectId(v, projectId);
  v.throwIfAny("project_id is required");
}
