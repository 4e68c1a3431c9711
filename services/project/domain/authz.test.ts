import { describe, expect, it } from "vitest";
import type { Principal } from "../../../mesh/context.js";
import {
  authorize,
  isPlatformAdmin,
  parseRoleName,
  type Role,
  RPC_ACCESS,
  type Rpc,
  roleAllowedFor,
} from "./authz.js";

const user: Principal = { type: "user", id: "u1" };
const service: Principal = { type: "service", id: "workitem" };
const apiKey: Principal = { type: "api_key", id: "k1" };
const agent: Principal = { type: "agent", id: "a1" };

const allowed = (rpc: Rpc, role: Role | undefined, p: Principal = user, self = false) =>
  authorize(rpc, p, role, self).allow;

describe("authorize", () => {
  it("covers every RPC of the service", () => {
    expect(Object.keys(RPC_ACCESS)).toHaveLength(24);
  });

  it("lets any role read, the AGENT role included", () => {
    for (const role of ["OWNER", "MAINTAINER", "VIEWER", "AGENT"] as const) {
      expect(allowed("GetProject", role)).toBe(true);
      expect(allowed("GetBuildReadiness", role)).toBe(true);
    }
  });

  it("hides projects from non-members (not_found) and denies members lacking the role", () => {
    expect(authorize("GetProject", user, undefined)).toEqual({ allow: false, outcome: "not_found" });
    expect(authorize("UpdateProject", user, undefined)).toEqual({ allow: false, outcome: "not_found" });
    expect(authorize("UpdateProject", user, "VIEWER")).toEqual({
      allow: false,
      outcome: "denied",
      required: "MAINTAINER",
    });
  });

  it("orders human roles OWNER > MAINTAINER > VIEWER and keeps AGENT read-only", () => {
    expect(allowed("SubmitVision", "MAINTAINER")).toBe(true);
    expect(allowed("SubmitVision", "OWNER")).toBe(true);
    expect(allowed("SubmitVision", "VIEWER")).toBe(false);
    expect(allowed("SubmitVision", "AGENT")).toBe(false);
    expect(allowed("ApproveRequirements", "MAINTAINER")).toBe(false);
    expect(allowed("ApproveRequirements", "OWNER")).toBe(true);
    expect(allowed("ArchiveProject", "MAINTAINER")).toBe(false);
    expect(allowed("AddMember", "OWNER")).toBe(true);
  });

  it("lets a member remove itself but not others", () => {
    expect(allowed("RemoveMember", "VIEWER", user, true)).toBe(true);
    expect(allowed("RemoveMember", "VIEWER", user, false)).toBe(false);
    expect(allowed("RemoveMember", "OWNER", user, false)).toBe(true);
  });

  it("treats service principals as platform admins and reserves internal RPCs to them", () => {
    expect(allowed("SetQuota", undefined, service)).toBe(true);
    expect(allowed("ArchiveProject", undefined, service)).toBe(true);
    expect(allowed("ReserveRunSlot", undefined, service)).toBe(true);
    expect(authorize("ReserveRunSlot", user, "OWNER")).toMatchObject({ allow: false, outcome: "denied" });
    expect(allowed("GetMemberRole", "OWNER", apiKey)).toBe(false);
  });

  it("recognizes human platform admins by the gateway's marker, never API keys", () => {
    const admin: Principal = { type: "user", id: "root", projectRoles: { "*": "admin" } };
    expect(isPlatformAdmin(admin)).toBe(true);
    expect(allowed("SetQuota", undefined, admin)).toBe(true);
    expect(allowed("GetProject", undefined, admin)).toBe(true);
    expect(allowed("ReserveRunSlot", undefined, admin)).toBe(false);
    expect(isPlatformAdmin({ type: "api_key", id: "k", projectRoles: { "*": "admin" } })).toBe(false);
    expect(isPlatformAdmin({ type: "user", id: "u", projectRoles: { "*": "owner" } })).toBe(false);
  });

  it("lets only users create projects", () => {
    expect(allowed("CreateProject", undefined, user)).toBe(true);
    expect(allowed("CreateProject", undefined, apiKey)).toBe(false);
    expect(allowed("CreateProject", undefined, agent)).toBe(false);
    expect(allowed("CreateProject", undefined, service)).toBe(false);
  });
});

describe("roles", () => {
  it("accepts the AGENT role only for agents, and only it", () => {
    expect(roleAllowedFor("AGENT", "AGENT")).toBe(true);
    expect(roleAllowedFor("AGENT", "VIEWER")).toBe(false);
    expect(roleAllowedFor("USER", "AGENT")).toBe(false);
    expect(roleAllowedFor("USER", "OWNER")).toBe(true);
  });

  it("parses role names as the gateway writes them", () => {
    expect(parseRoleName("owner")).toBe("OWNER");
    expect(parseRoleName("MEMBER_ROLE_MAINTAINER")).toBe("MAINTAINER");
    expect(parseRoleName("admin")).toBeUndefined();
    expect(parseRoleName(undefined)).toBeUndefined();
  });
});
