/**
 * Project roles as the gateway forwards them to services.
 *
 * The forwarded principal (mesh/context.ts) carries `projectRoles`: project id → one of the
 * lower-case names below. Platform administrators carry `projectRoles["*"] = "admin"`, the
 * convention every service reads. Keeping the names and the proto enum mapping in one file
 * means the gateway, its tests and the ADR cannot disagree about spelling.
 */
import { MemberRole } from "../../../gen/codex/project/v1/member_pb.js";

/** A role held in one project. */
export type RoleName = "owner" | "maintainer" | "viewer" | "agent";

/** Key of `projectRoles` that marks a platform administrator. */
export const ALL_PROJECTS = "*";
/** Value of `projectRoles["*"]` for a platform administrator. */
export const ADMIN_ROLE = "admin";

const TO_PROTO: Record<RoleName, MemberRole> = {
  owner: MemberRole.OWNER,
  maintainer: MemberRole.MAINTAINER,
  viewer: MemberRole.VIEWER,
  agent: MemberRole.AGENT,
};

/** The proto enum value of a role. */
export function roleToProto(role: RoleName): MemberRole {
  return TO_PROTO[role];
}

/** The role of a proto enum value; `undefined` for MEMBER_ROLE_UNSPECIFIED (not a member). */
export function roleFromProto(role: MemberRole): RoleName | undefined {
  return (Object.keys(TO_PROTO) as RoleName[]).find((r) => TO_PROTO[r] === role);
}

/** Parses a forwarded role name ("owner", "OWNER", "MEMBER_ROLE_OWNER"); unknown names grant nothing. */
export function parseRole(raw: string | undefined): RoleName | undefined {
  if (raw === undefined) return undefined;
  const name = raw.toLowerCase().replace(/^member_role_/, "");
  return name in TO_PROTO ? (name as RoleName) : undefined;
}

/** Rank of the human roles; AGENT stands apart and is not comparable with them. */
const HUMAN_RANK: Record<Exclude<RoleName, "agent">, number> = { viewer: 1, maintainer: 2, owner: 3 };

/** Whether `role` grants at least `min` (a human role). AGENT never does. */
export function atLeast(role: RoleName | undefined, min: Exclude<RoleName, "agent">): boolean {
  return role !== undefined && role !== "agent" && HUMAN_RANK[role] >= HUMAN_RANK[min];
}

/**
 * The weaker of two roles: an API key acts with its own role capped by its creator's current
 * role. An AGENT key stays AGENT while its creator can still change things (MAINTAINER or
 * OWNER): agent work writes (logs, artifacts, run outcomes), so a creator who may only read
 * cannot delegate it. `undefined` means "no role".
 */
export function capRole(keyRole: RoleName, creatorRole: RoleName | undefined): RoleName | undefined {
  if (creatorRole === undefined || creatorRole === "agent") return undefined;
  if (keyRole === "agent") return atLeast(creatorRole, "maintainer") ? "agent" : undefined;
  return HUMAN_RANK[keyRole] <= HUMAN_RANK[creatorRole] ? keyRole : creatorRole;
}
