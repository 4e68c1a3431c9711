import { create, type Message } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { Code, ServiceError } from "../../../mesh/errors.js";
import { buildRouteTable, type PublicMethod } from "../routes/route-table.js";
import { GatewayAuthorizer } from "./authorizer.js";
import type { Membership } from "./memberships.js";
import { POLICY } from "./policy.js";
import type { GatewayPrincipal, KeyGrant } from "./principal.js";
import type { RoleName } from "./roles.js";

const table = buildRouteTable();
const P1 = "11111111-1111-4111-8111-111111111111";
const P2 = "22222222-2222-4222-8222-222222222222";

function route(path: string): PublicMethod {
  const r = table.public.get(`/codex.${path}`);
  if (!r) throw new Error(`no public method ${path}`);
  return r;
}

function req(r: PublicMethod, init: Record<string, unknown> = {}): Message {
  return create(r.method.input, init as never) as Message;
}

const user = (roles: Record<string, string>, id = "alice"): GatewayPrincipal => ({
  type: "user",
  id,
  authMethod: "jwt",
  projectRoles: roles,
});
const agent = (roles: Record<string, string>): GatewayPrincipal => ({
  type: "agent",
  id: "agent-1",
  authMethod: "jwt",
  projectRoles: roles,
});
const key = (grant: Partial<KeyGrant> & { role: RoleName }, effective: RoleName | null = grant.role) => ({
  type: "api_key" as const,
  id: "key-1",
  authMethod: "api_key" as const,
  projectRoles: effective ? { [P1]: effective } : {},
  apiKey: { projectId: P1, scopes: [], requestsPerMinute: 0, ...grant },
});

const authz = new GatewayAuthorizer({ memberships: { roleIn: async () => undefined } });

async function check(p: GatewayPrincipal, path: string, init?: Record<string, unknown>): Promise<string> {
  const r = route(path);
  try {
    await authz.authorize(p, r, r.method.methodKind === "unary" ? req(r, init) : undefined);
    return "OK";
  } catch (err) {
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as ServiceError).code).toBe(Code.PERMISSION_DENIED);
    return (err as ServiceError).reason ?? "?";
  }
}

const GET_PROJECT = "project.v1.ProjectService/GetProject";
const UPDATE_PROJECT = "project.v1.ProjectService/UpdateProject";
const ADD_MEMBER = "project.v1.ProjectService/AddMember";
const CREATE_ITEM = "workitem.v1.WorkItemService/CreateWorkItem";
const CLAIM = "agentmanager.v1.AgentManagerService/ClaimRun";

describe("authorizer: project roles", () => {
  it("lets viewers read and refuses them changes", async () => {
    const viewer = user({ [P1]: "viewer" });
    expect(await check(viewer, GET_PROJECT, { projectId: P1 })).toBe("OK");
    expect(await check(viewer, UPDATE_PROJECT, { project: { id: P1 } })).toBe("ROLE_REQUIRED");
    expect(await check(viewer, CREATE_ITEM, { projectId: P1 })).toBe("ROLE_REQUIRED");
  });

  it("lets maintainers change, and only owners manage members and keys", async () => {
    const maintainer = user({ [P1]: "maintainer" });
    expect(await check(maintainer, UPDATE_PROJECT, { project: { id: P1 } })).toBe("OK");
    expect(await check(maintainer, CREATE_ITEM, { projectId: P1 })).toBe("OK");
    expect(await check(maintainer, ADD_MEMBER, { projectId: P1 })).toBe("ROLE_REQUIRED");
    expect(await check(maintainer, "gateway.v1.ApiKeyService/CreateApiKey", { projectId: P1 })).toBe(
      "ROLE_REQUIRED",
    );
    expect(await check(maintainer, "gateway.v1.ApiKeyService/ListApiKeys", { projectId: P1 })).toBe("OK");
    const owner = user({ [P1]: "owner" });
    expect(await check(owner, ADD_MEMBER, { projectId: P1 })).toBe("OK");
    expect(await check(owner, "gateway.v1.ApiKeyService/RevokeApiKey", { projectId: P1 })).toBe("OK");
  });

  it("judges each project separately", async () => {
    const p = user({ [P1]: "owner", [P2]: "viewer" });
    expect(await check(p, CREATE_ITEM, { projectId: P2 })).toBe("ROLE_REQUIRED");
    expect(await check(user({}), GET_PROJECT, { projectId: P1 })).toBe("ROLE_REQUIRED");
  });

  it("reads the project from the rule's field, project.id and parent", async () => {
    const owner = user({ [P1]: "owner" });
    expect(
      await check(owner, "workitem.v1.WorkItemService/SetApprovalPolicy", { policy: { projectId: P1 } }),
    ).toBe("OK");
    expect(
      await check(user({ [P1]: "maintainer" }), "workitem.v1.WorkItemService/SetRiskRules", {
        riskRules: { projectId: P1 },
      }),
    ).toBe("ROLE_REQUIRED");
  });

  it("lets a member remove itself but not others", async () => {
    const viewer = user({ [P1]: "viewer" });
    const remove = "project.v1.ProjectService/RemoveMember";
    expect(await check(viewer, remove, { projectId: P1, principalId: "alice" })).toBe("OK");
    expect(await check(viewer, remove, { projectId: P1, principalId: "bob" })).toBe("ROLE_REQUIRED");
  });

  it("leaves requests without a project to the service, and ListMembers '-' too", async () => {
    expect(await check(user({}), "workitem.v1.WorkItemService/GetWorkItem", { workItemId: "w1" })).toBe("OK");
    expect(await check(user({}), "project.v1.ProjectService/ListMembers", { projectId: "-" })).toBe("OK");
  });

  it("gives platform admins every human level, and admin-only methods only to them", async () => {
    const admin = user({ "*": "admin" });
    expect(await check(admin, ADD_MEMBER, { projectId: P1 })).toBe("OK");
    expect(await check(admin, "audit.v1.AuditService/VerifyChain")).toBe("OK");
    expect(await check(user({ [P1]: "owner" }), "audit.v1.AuditService/VerifyChain")).toBe("ADMIN_REQUIRED");
    expect(await check(admin, CLAIM)).toBe("AGENT_ONLY");
  });

  it("looks up the role of a truncated principal and forwards it", async () => {
    const calls: string[] = [];
    const a = new GatewayAuthorizer({
      memberships: {
        roleIn: async (projectId, principalId): Promise<Membership> => {
          calls.push(`${projectId}/${principalId}`);
          return { role: "maintainer", archived: false, projectName: "p" };
        },
      },
    });
    const p = { ...user({}), projectRolesTruncated: true };
    const r = route(CREATE_ITEM);
    await a.authorize(p, r, req(r, { projectId: P2 }));
    expect(calls).toEqual([`${P2}/alice`]);
    expect(p.projectRoles?.[P2]).toBe("maintainer");
  });
});

describe("authorizer: agents and people", () => {
  it("refuses agent credentials on people's RPCs", async () => {
    const a = agent({ [P1]: "agent" });
    expect(await check(a, CREATE_ITEM, { projectId: P1 })).toBe("AGENTS_NOT_ALLOWED");
    expect(await check(a, "project.v1.ProjectService/CreateProject")).toBe("USER_REQUIRED");
    expect(await check(a, "workitem.v1.WorkItemService/GetWorkItem", { workItemId: "w" })).toBe("OK");
    expect(await check(a, GET_PROJECT, { projectId: P1 })).toBe("OK");
    expect(await check(a, GET_PROJECT, { projectId: P2 })).toBe("ROLE_REQUIRED");
    expect(await check(a, CLAIM, { agentId: "agent-1" })).toBe("OK");
    expect(await check(a, "agentmanager.v1.AgentManagerService/Connect")).toBe("OK");
  });

  it("refuses people on agent RPCs", async () => {
    const owner = user({ [P1]: "owner" });
    expect(await check(owner, CLAIM, { agentId: "x" })).toBe("AGENT_ONLY");
    expect(await check(owner, "agentmanager.v1.AgentManagerService/Connect")).toBe("AGENT_ONLY");
    expect(await check(owner, "workitem.v1.WorkItemService/UploadArtifact")).toBe("AGENT_ONLY");
  });
});

describe("authorizer: API keys", () => {
  it("acts with the key's role in its own project only", async () => {
    const k = key({ role: "maintainer" });
    expect(await check(k, CREATE_ITEM, { projectId: P1 })).toBe("OK");
    expect(await check(k, CREATE_ITEM, { projectId: P2 })).toBe("API_KEY_PROJECT");
    expect(await check(k, ADD_MEMBER, { projectId: P1 })).toBe("ROLE_REQUIRED");
    expect(await check(key({ role: "maintainer" }, "viewer"), CREATE_ITEM, { projectId: P1 })).toBe(
      "ROLE_REQUIRED",
    );
  });

  it("refuses keys whose creator left, keys on key management, the audit trail and CreateProject", async () => {
    expect(await check(key({ role: "viewer" }, null), GET_PROJECT, { projectId: P1 })).toBe(
      "API_KEY_NO_ROLE",
    );
    const k = key({ role: "maintainer" });
    expect(await check(k, "gateway.v1.ApiKeyService/ListApiKeys", { projectId: P1 })).toBe(
      "API_KEY_NOT_ALLOWED",
    );
    expect(await check(k, "audit.v1.AuditService/QueryAuditRecords", { projectId: P1 })).toBe(
      "API_KEY_NOT_ALLOWED",
    );
    expect(await check(k, "project.v1.ProjectService/CreateProject")).toBe("USER_REQUIRED");
    expect(await check(k, "gateway.v1.IdentityService/WhoAmI")).toBe("OK");
  });

  it("honours method scopes", async () => {
    const k = key({
      role: "maintainer",
      scopes: ["codex.workitem.v1.WorkItemService/*", `codex.project.v1.ProjectService/GetProject`],
    });
    expect(await check(k, CREATE_ITEM, { projectId: P1 })).toBe("OK");
    expect(await check(k, GET_PROJECT, { projectId: P1 })).toBe("OK");
    expect(await check(k, "project.v1.ProjectService/GetVision", { projectId: P1 })).toBe("API_KEY_SCOPE");
  });

  it("lets AGENT keys register agents and do agent work, and nothing else", async () => {
    const k = key({ role: "agent" });
    expect(await check(k, "agentmanager.v1.AgentManagerService/RegisterAgent")).toBe("OK");
    expect(await check(k, CLAIM, { agentId: "a" })).toBe("OK");
    expect(await check(k, CREATE_ITEM, { projectId: P1 })).toBe("AGENTS_NOT_ALLOWED");
    expect(
      await check(key({ role: "maintainer" }), "agentmanager.v1.AgentManagerService/RegisterAgent"),
    ).toBe("AGENT_ONLY");
  });
});

describe("policy table", () => {
  it("covers exactly the public methods", () => {
    expect([...POLICY.keys()].sort()).toEqual([...table.public.keys()].sort());
  });

  it("refuses a method missing from the table", async () => {
    const a = new GatewayAuthorizer({ memberships: { roleIn: async () => undefined }, policy: new Map() });
    const r = route(GET_PROJECT);
    await expect(a.authorize(user({ "*": "admin" }), r, req(r))).rejects.toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
  });
});
