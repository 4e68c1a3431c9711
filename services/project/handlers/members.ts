import { create } from "@bufbuild/protobuf";
import {
  AddMemberRequestSchema,
  AddMemberResponseSchema,
  MemberRole,
  PrincipalType,
} from "../../../gen/codex/project/v1/member_pb.js";
import type { ProjectService } from "../../../gen/codex/project/v1/project_service_pb.js";
import {
  alreadyExists,
  failedPrecondition,
  notFound,
  permissionDenied,
  resourceExhausted,
} from "../../../mesh/errors.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import { pageTokens } from "../../../mesh/pagination/page-token.js";
import { isPlatformAdmin, roleAllowedFor } from "../domain/authz.js";
import { LIMITS, PAGE_SIZES, PRINCIPAL_ID, UUID } from "../domain/limits.js";
import { Violations } from "../domain/validation.js";
import { memberAdded, memberRemoved, memberRoleChanged } from "../events.js";
import { memberEtag, memberMessage } from "../resources.js";
import type { Db } from "../store/db.js";
import {
  countMembers,
  countRole,
  deleteMember,
  getMember,
  insertMember,
  listMembers,
  type MemberRow,
  updateMemberRole,
} from "../store/members.js";
import { getProject } from "../store/projects.js";
import { access, callerOf, type Deps, inTransaction, requireInternal, roleFromProto } from "./context.js";
import { idempotent } from "./idempotency.js";
import { assertActive, assertEtag } from "./preconditions.js";

type Impl = ServiceImpl<typeof ProjectService>;

const ROLES = [MemberRole.OWNER, MemberRole.MAINTAINER, MemberRole.VIEWER, MemberRole.AGENT];
const PRINCIPAL_TYPES = [PrincipalType.USER, PrincipalType.AGENT];

function checkPrincipalId(v: Violations, field: string, id: string): void {
  if (id === "") v.add(field, "is required");
  else if (id.length > LIMITS.principalIdMax || !PRINCIPAL_ID.test(id)) {
    v.add(field, "must be 1-256 characters of [A-Za-z0-9._@|:+-]");
  }
}

/** Whether `role` may be held by a principal of `type` (AGENT role for AGENT principals only). */
function roleFits(type: number, role: number): boolean {
  const r = roleFromProto(role);
  return r !== undefined && roleAllowedFor(type === PrincipalType.AGENT ? "AGENT" : "USER", r);
}

/** The last OWNER can be neither removed nor demoted: a project must stay administrable. */
async function assertNotLastOwner(db: Db, m: MemberRow, action: string): Promise<void> {
  if (m.role !== MemberRole.OWNER) return;
  if ((await countRole(db, m.projectId, MemberRole.OWNER)) > 1) return;
  throw failedPrecondition(
    `cannot ${action} the last OWNER of the project; make another member OWNER first`,
    [
      {
        type: "LAST_OWNER",
        subject: `projects/${m.projectId}/members/${m.principalId}`,
        description: "only OWNER",
      },
    ],
    "LAST_OWNER",
  );
}

export function memberHandlers(
  deps: Deps,
): Pick<Impl, "addMember" | "removeMember" | "updateMemberRole" | "listMembers" | "getMemberRole"> {
  return {
    async addMember(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations().uuid("project_id", req.projectId);
      const m = req.member;
      if (!m) v.add("member", "is required");
      else {
        checkPrincipalId(v, "member.principal_id", m.principalId);
        v.enumValue("member.principal_type", m.principalType, PRINCIPAL_TYPES, false);
        v.enumValue("member.role", m.role, ROLES, false);
        if (m.projectId !== "" && m.projectId !== req.projectId)
          v.add("member.project_id", "must equal project_id");
        if (
          PRINCIPAL_TYPES.includes(m.principalType) &&
          ROLES.includes(m.role) &&
          !roleFits(m.principalType, m.role)
        ) {
          v.add("member.role", "MEMBER_ROLE_AGENT is the only role for AGENT principals and only for them");
        }
      }
      v.requestId("request_id", req.requestId);
      v.throwIfAny("invalid AddMember request");
      const input = m!;
      const call = {
        method: "AddMember",
        requestId: req.requestId,
        input: AddMemberRequestSchema,
        request: req,
        output: AddMemberResponseSchema,
      };
      return idempotent(deps, ctx, principal, call, async (tx) => {
        const { project } = await access(tx.client, principal, req.projectId, "AddMember", { lock: true });
        assertActive(project);
        if (await getMember(tx.client, project.id, input.principalId)) {
          throw alreadyExists(
            "member",
            `${project.id}/${input.principalId}`,
            "is already a member (use UpdateMemberRole)",
          );
        }
        if ((await countMembers(tx.client, project.id)) >= LIMITS.membersMax) {
          throw resourceExhausted(`project "${project.name}" has ${LIMITS.membersMax} members`, {
            subject: `project:${project.id}`,
            description: `members (limit ${LIMITS.membersMax})`,
          });
        }
        const row: MemberRow = {
          projectId: project.id,
          principalId: input.principalId,
          principalType: input.principalType,
          role: input.role,
          addedBy: principal.id,
          addTime: tx.now,
          updateTime: tx.now,
          version: 1n,
        };
        await insertMember(tx.client, row);
        await tx.emit(memberAdded(row));
        return create(AddMemberResponseSchema, { member: memberMessage(row) });
      });
    },

    async removeMember(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations().uuid("project_id", req.projectId);
      checkPrincipalId(v, "principal_id", req.principalId);
      v.throwIfAny("invalid RemoveMember request");
      const self =
        principal.id === req.principalId && (principal.type === "user" || principal.type === "agent");
      return inTransaction(deps, ctx, principal, async (tx) => {
        const { project } = await access(tx.client, principal, req.projectId, "RemoveMember", {
          lock: true,
          self,
        });
        assertActive(project);
        const member = await getMember(tx.client, project.id, req.principalId);
        if (!member) throw notFound("member", `${project.id}/${req.principalId}`);
        assertEtag(
          req.etag,
          "member",
          `${member.projectId}/${member.principalId}`,
          member.version,
          "membership",
        );
        await assertNotLastOwner(tx.client, member, "remove");
        await deleteMember(tx.client, project.id, member.principalId);
        await tx.emit(memberRemoved(member));
        return {};
      });
    },

    async updateMemberRole(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations().uuid("project_id", req.projectId);
      checkPrincipalId(v, "principal_id", req.principalId);
      v.enumValue("role", req.role, ROLES, false);
      v.throwIfAny("invalid UpdateMemberRole request");
      return inTransaction(deps, ctx, principal, async (tx) => {
        const { project } = await access(tx.client, principal, req.projectId, "UpdateMemberRole", {
          lock: true,
        });
        assertActive(project);
        const member = await getMember(tx.client, project.id, req.principalId);
        if (!member) throw notFound("member", `${project.id}/${req.principalId}`);
        if (!roleFits(member.principalType, req.role)) {
          new Violations()
            .add("role", "MEMBER_ROLE_AGENT is the only role for AGENT principals and only for them")
            .throwIfAny("invalid UpdateMemberRole request");
        }
        assertEtag(
          req.etag,
          "member",
          `${member.projectId}/${member.principalId}`,
          member.version,
          "membership",
        );
        if (member.role === req.role) return { member: memberMessage(member) };
        await assertNotLastOwner(tx.client, member, "demote");
        const updated: MemberRow = {
          ...member,
          role: req.role,
          updateTime: tx.now,
          version: member.version + 1n,
        };
        await updateMemberRole(tx.client, updated);
        await tx.emit(memberRoleChanged(updated, member.role));
        return { member: memberMessage(updated) };
      });
    },

    async listMembers(req, ctx) {
      const principal = callerOf(ctx);
      const acrossProjects = req.projectId === "-";
      const v = new Violations().pageSize(req.pageSize);
      if (!acrossProjects) v.uuid("project_id", req.projectId);
      else if (req.principalId === "") v.add("principal_id", 'is required when project_id is "-"');
      if (req.principalId !== "") checkPrincipalId(v, "principal_id", req.principalId);
      v.enumValue("role", req.role, ROLES, true);
      v.enumValue("principal_type", req.principalType, PRINCIPAL_TYPES, true);
      const pages = pageTokens({ p: req.projectId, r: req.role, i: req.principalId, t: req.principalType });
      const cursor = pages.cursorOf(req.pageToken, v, {
        arity: 2,
        valid: ([projectId, principalId]) => UUID.test(String(projectId)) && typeof principalId === "string",
      });
      v.throwIfAny("invalid ListMembers request");
      if (acrossProjects) {
        if (principal.id !== req.principalId && !isPlatformAdmin(principal)) {
          throw permissionDenied("only the principal itself or a platform admin may list its memberships");
        }
      } else {
        await access(deps.pool, principal, req.projectId, "ListMembers");
      }
      const limit = clampPageSize(req.pageSize, PAGE_SIZES.members);
      const rows = await listMembers(deps.pool, {
        projectId: acrossProjects ? undefined : req.projectId,
        principalId: req.principalId,
        role: req.role,
        principalType: req.principalType,
        after: cursor ? [String(cursor[0]), String(cursor[1])] : undefined,
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        members: page.map(memberMessage),
        nextPageToken: rows.length > limit && last ? pages.encode([last.projectId, last.principalId]) : "",
      };
    },

    async getMemberRole(req, ctx) {
      const principal = callerOf(ctx);
      requireInternal(principal, "GetMemberRole");
      const v = new Violations().uuid("project_id", req.projectId);
      checkPrincipalId(v, "principal_id", req.principalId);
      v.throwIfAny("invalid GetMemberRole request");
      const project = await getProject(deps.pool, req.projectId);
      if (!project) throw notFound("project", req.projectId);
      const member = await getMember(deps.pool, project.id, req.principalId);
      return {
        role: member?.role ?? MemberRole.UNSPECIFIED,
        projectState: project.state,
        projectName: project.name,
        etag: member ? memberEtag(member) : "",
      };
    },
  };
}
