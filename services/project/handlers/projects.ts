import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { MemberRole, PrincipalType } from "../../../gen/codex/project/v1/member_pb.js";
import {
  ArchiveProjectRequestSchema,
  ArchiveProjectResponseSchema,
  CreateProjectRequestSchema,
  CreateProjectResponseSchema,
  ProjectState,
} from "../../../gen/codex/project/v1/project_pb.js";
import type { ProjectService } from "../../../gen/codex/project/v1/project_service_pb.js";
import { alreadyExists, permissionDenied, resourceExhausted } from "../../../mesh/errors.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import { pageTokens } from "../../../mesh/pagination/page-token.js";
import { authorize, isPlatformAdmin, parseRoleName } from "../domain/authz.js";
import { applyProjectMask, checkUpdateMask } from "../domain/field-mask.js";
import { LIMITS, PAGE_SIZES, UUID } from "../domain/limits.js";
import { checkLabels, checkProjectName, Violations } from "../domain/validation.js";
import { memberAdded, projectArchived, projectCreated, projectUpdated } from "../events.js";
import { projectMessage } from "../resources.js";
import { uniqueViolation } from "../store/db.js";
import { insertMember } from "../store/members.js";
import {
  countActiveCreatedBy,
  insertProject,
  listProjects,
  nameTaken,
  type ProjectQuery,
  type ProjectRow,
  saveProject,
} from "../store/projects.js";
import { insertDefaultQuota } from "../store/quotas.js";
import { access, callerOf, type Deps, inTransaction } from "./context.js";
import { idempotent } from "./idempotency.js";
import { assertActive, assertEtag } from "./preconditions.js";

type Impl = ServiceImpl<typeof ProjectService>;

const PROJECT_STATES = [ProjectState.ACTIVE, ProjectState.ARCHIVED];

export function projectHandlers(
  deps: Deps,
): Pick<Impl, "createProject" | "getProject" | "listProjects" | "updateProject" | "archiveProject"> {
  return {
    async createProject(req, ctx) {
      const principal = callerOf(ctx);
      if (!authorize("CreateProject", principal, undefined).allow) {
        // API keys are project-scoped and agents and services own nothing (project_service.proto).
        throw permissionDenied("CreateProject requires an authenticated user", "USER_REQUIRED");
      }
      const v = new Violations();
      const p = req.project;
      if (!p) v.add("project", "is required");
      else {
        checkProjectName(v, "project.name", p.name);
        v.length("project.display_name", p.displayName, 0, LIMITS.displayNameMax);
        v.length("project.description", p.description, 0, LIMITS.descriptionMax);
        checkLabels(v, "project.labels", p.labels);
      }
      v.requestId("request_id", req.requestId);
      v.throwIfAny("invalid CreateProject request");
      const input = p!;
      const call = {
        method: "CreateProject",
        requestId: req.requestId,
        input: CreateProjectRequestSchema,
        request: req,
        output: CreateProjectResponseSchema,
      };
      try {
        return await idempotent(deps, ctx, principal, call, async (tx) => {
          const owned = await countActiveCreatedBy(tx.client, principal.id);
          if (owned >= deps.maxProjectsPerPrincipal) {
            throw resourceExhausted(`${principal.id} already created ${owned} active projects`, {
              subject: `principal:${principal.id}`,
              description: `projects_per_principal (limit ${deps.maxProjectsPerPrincipal})`,
            });
          }
          if (await nameTaken(tx.client, input.name))
            throw alreadyExists("project", input.name, "name is taken");
          const project: ProjectRow = {
            id: randomUUID(),
            name: input.name,
            displayName: input.displayName || input.name,
            description: input.description,
            labels: { ...input.labels },
            state: ProjectState.ACTIVE,
            createdBy: principal.id,
            createTime: tx.now,
            updateTime: tx.now,
            archiveTime: null,
            version: 1n,
          };
          const owner = {
            projectId: project.id,
            principalId: principal.id,
            principalType: PrincipalType.USER,
            role: MemberRole.OWNER,
            addedBy: principal.id,
            addTime: tx.now,
            updateTime: tx.now,
            version: 1n,
          };
          await insertProject(tx.client, project);
          await insertMember(tx.client, owner);
          await insertDefaultQuota(tx.client, project.id);
          await tx.emit(projectCreated(project));
          await tx.emit(memberAdded(owner));
          return create(CreateProjectResponseSchema, { project: projectMessage(project) });
        });
      } catch (err) {
        // Two concurrent creates of one name: the loser trips the unique index.
        if (uniqueViolation(err) === "projects_name_key")
          throw alreadyExists("project", input.name, "name is taken");
        throw err;
      }
    },

    async getProject(req, ctx) {
      const principal = callerOf(ctx);
      new Violations().uuid("project_id", req.projectId).throwIfAny("invalid GetProject request");
      const { project } = await access(deps.pool, principal, req.projectId, "GetProject");
      return { project: projectMessage(project) };
    },

    async listProjects(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations().pageSize(req.pageSize);
      v.enumValue("state", req.state, PROJECT_STATES, true);
      checkLabels(v, "labels", req.labels);
      if (req.namePrefix.length > LIMITS.nameMax || !/^[a-z0-9-]*$/.test(req.namePrefix)) {
        v.add("name_prefix", "must be at most 63 characters of [a-z0-9-]");
      }
      const pages = pageTokens({ s: req.state, l: req.labels, n: req.namePrefix });
      const cursor = pages.cursorOf(req.pageToken, v, {
        arity: 1,
        valid: ([name]) => typeof name === "string",
      });
      v.throwIfAny("invalid ListProjects request");
      const limit = clampPageSize(req.pageSize, PAGE_SIZES.projects);
      const query: ProjectQuery = {
        state: req.state,
        labels: req.labels,
        namePrefix: req.namePrefix,
        afterName: cursor ? String(cursor[0]) : undefined,
        limit: limit + 1,
      };
      if (principal.type === "api_key") {
        // API keys see exactly the projects their signed claim names.
        query.visibleIds = Object.entries(principal.projectRoles ?? {})
          .filter(([id, role]) => UUID.test(id) && parseRoleName(role) !== undefined)
          .map(([id]) => id);
      } else if (!isPlatformAdmin(principal)) {
        query.memberId = principal.id;
      }
      const rows = await listProjects(deps.pool, query);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        projects: page.map(projectMessage),
        nextPageToken: rows.length > limit && last ? pages.encode([last.name]) : "",
      };
    },

    async updateProject(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations();
      const p = req.project;
      if (!p) v.add("project", "is required");
      else v.uuid("project.id", p.id);
      const paths = checkUpdateMask(v, req.updateMask?.paths ?? []);
      if (p) {
        if (paths.includes("display_name"))
          v.length("project.display_name", p.displayName, 0, LIMITS.displayNameMax);
        if (paths.includes("description"))
          v.length("project.description", p.description, 0, LIMITS.descriptionMax);
        if (paths.includes("labels")) checkLabels(v, "project.labels", p.labels);
      }
      v.throwIfAny("invalid UpdateProject request");
      const input = p!;
      return inTransaction(deps, ctx, principal, async (tx) => {
        const { project } = await access(tx.client, principal, input.id, "UpdateProject", { lock: true });
        assertActive(project);
        assertEtag(input.etag, "project", project.id, project.version, `project "${project.name}"`);
        const patch = {
          // An empty display name falls back to the name, as on creation.
          displayName: input.displayName || project.name,
          description: input.description,
          labels: input.labels,
        };
        const { next, changed } = applyProjectMask(project, patch, paths);
        if (changed.length === 0) return { project: projectMessage(project) };
        const updated: ProjectRow = {
          ...project,
          ...next,
          updateTime: tx.now,
          version: project.version + 1n,
        };
        await saveProject(tx.client, updated);
        await tx.emit(projectUpdated(updated, changed));
        return { project: projectMessage(updated) };
      });
    },

    async archiveProject(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations().uuid("project_id", req.projectId);
      if (req.etag === "") v.add("etag", "is required: archiving is irreversible, send the etag you read");
      v.length("reason", req.reason, 0, LIMITS.archiveReasonMax);
      v.requestId("request_id", req.requestId);
      v.throwIfAny("invalid ArchiveProject request");
      const call = {
        method: "ArchiveProject",
        requestId: req.requestId,
        input: ArchiveProjectRequestSchema,
        request: req,
        output: ArchiveProjectResponseSchema,
      };
      return idempotent(deps, ctx, principal, call, async (tx) => {
        const { project } = await access(tx.client, principal, req.projectId, "ArchiveProject", {
          lock: true,
        });
        assertActive(project);
        assertEtag(req.etag, "project", project.id, project.version, `project "${project.name}"`);
        const archived: ProjectRow = {
          ...project,
          state: ProjectState.ARCHIVED,
          archiveTime: tx.now,
          updateTime: tx.now,
          version: project.version + 1n,
        };
        await saveProject(tx.client, archived);
        await tx.emit(projectArchived(archived, req.reason));
        return create(ArchiveProjectResponseSchema, { project: projectMessage(archived) });
      });
    },
  };
}
