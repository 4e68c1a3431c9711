import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ProjectState } from "../../../gen/codex/project/v1/project_pb.js";
import type { ProjectService } from "../../../gen/codex/project/v1/project_service_pb.js";
import { BuildBlocker, RequirementsState } from "../../../gen/codex/project/v1/requirements_pb.js";
import { notFound } from "../../../mesh/errors.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import { pageTokens } from "../../../mesh/pagination/page-token.js";
import { PAGE_SIZES, UUID } from "../domain/limits.js";
import { Violations } from "../domain/validation.js";
import { draftMessage } from "../resources.js";
import { findByState, getDraft, listDrafts } from "../store/requirements.js";
import { currentVisionVersion } from "../store/visions.js";
import { access, callerOf, type Deps } from "./context.js";

type Impl = ServiceImpl<typeof ProjectService>;

const STATES = [
  RequirementsState.PROPOSED,
  RequirementsState.APPROVED,
  RequirementsState.REJECTED,
  RequirementsState.SUPERSEDED,
];

/** Reads of requirements drafts and the build gate derived from them. */
export function requirementsReadHandlers(
  deps: Deps,
): Pick<Impl, "getRequirements" | "listRequirements" | "getBuildReadiness"> {
  return {
    async getRequirements(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations()
        .uuid("project_id", req.projectId)
        .uuid("requirements_id", req.requirementsId);
      if (req.version < 0n) v.add("version", "must not be negative");
      v.throwIfAny("invalid GetRequirements request");
      const { project } = await access(deps.pool, principal, req.projectId, "GetRequirements");
      const draft = await getDraft(deps.pool, project.id, req.requirementsId, req.version);
      if (!draft) {
        const what = req.version === 0n ? req.requirementsId : `${req.requirementsId}@${req.version}`;
        throw notFound("requirements", what);
      }
      return { requirements: draftMessage(draft) };
    },

    async listRequirements(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations().uuid("project_id", req.projectId).pageSize(req.pageSize);
      v.enumValue("state", req.state, STATES, true);
      const pages = pageTokens({ p: req.projectId, s: req.state });
      const cursor = pages.cursorOf(req.pageToken, v, {
        arity: 2,
        valid: ([createMs, id]) => Number.isSafeInteger(createMs) && UUID.test(String(id)),
      });
      v.throwIfAny("invalid ListRequirements request");
      const { project } = await access(deps.pool, principal, req.projectId, "ListRequirements");
      const limit = clampPageSize(req.pageSize, PAGE_SIZES.requirements);
      const after = cursor ? ([new Date(Number(cursor[0])), String(cursor[1])] as const) : undefined;
      const rows = await listDrafts(deps.pool, project.id, req.state, after, limit + 1);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        requirements: page.map(draftMessage),
        nextPageToken: rows.length > limit && last ? pages.encode([last.createTime.getTime(), last.id]) : "",
      };
    },

    async getBuildReadiness(req, ctx) {
      const principal = callerOf(ctx);
      new Violations().uuid("project_id", req.projectId).throwIfAny("invalid GetBuildReadiness request");
      const { project } = await access(deps.pool, principal, req.projectId, "GetBuildReadiness");
      const approved = await findByState(deps.pool, project.id, RequirementsState.APPROVED);
      const visionVersion = await currentVisionVersion(deps.pool, project.id);
      const blockers: BuildBlocker[] = [];
      if (project.state === ProjectState.ARCHIVED) blockers.push(BuildBlocker.PROJECT_ARCHIVED);
      if (!approved) blockers.push(BuildBlocker.NO_APPROVED_REQUIREMENTS);
      return {
        ready: blockers.length === 0,
        blockers,
        approvedRequirementsId: approved?.id ?? "",
        approvedRequirementsVersion: approved?.contentVersion ?? 0n,
        ...(approved?.decideTime ? { approveTime: timestampFromDate(approved.decideTime) } : {}),
        visionVersion,
      };
    },
  };
}
