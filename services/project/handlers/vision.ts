import { create } from "@bufbuild/protobuf";
import type { ProjectService } from "../../../gen/codex/project/v1/project_service_pb.js";
import {
  SubmitVisionRequestSchema,
  SubmitVisionResponseSchema,
} from "../../../gen/codex/project/v1/vision_pb.js";
import { aborted, notFound } from "../../../mesh/errors.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import { pageTokens } from "../../../mesh/pagination/page-token.js";
import { LIMITS, PAGE_SIZES } from "../domain/limits.js";
import { Violations } from "../domain/validation.js";
import { visionSubmitted } from "../events.js";
import { visionMessage } from "../resources.js";
import {
  currentVisionVersion,
  getVision,
  insertVision,
  listVisions,
  type VisionRow,
} from "../store/visions.js";
import { access, callerOf, type Deps } from "./context.js";
import { idempotent } from "./idempotency.js";
import { assertActive } from "./preconditions.js";

type Impl = ServiceImpl<typeof ProjectService>;

export function visionHandlers(deps: Deps): Pick<Impl, "submitVision" | "getVision" | "listVisionVersions"> {
  return {
    async submitVision(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations().uuid("project_id", req.projectId);
      const vision = req.vision;
      if (!vision) v.add("vision", "is required");
      else {
        v.length("vision.problem", vision.problem, 1, LIMITS.visionFieldMax);
        v.length("vision.constraints", vision.constraints, 0, LIMITS.visionFieldMax);
        v.length("vision.success_criteria", vision.successCriteria, 0, LIMITS.visionFieldMax);
      }
      if (req.baseVersion < 0n) v.add("base_version", "must not be negative");
      v.requestId("request_id", req.requestId);
      v.throwIfAny("invalid SubmitVision request");
      const input = vision!;
      const call = {
        method: "SubmitVision",
        requestId: req.requestId,
        input: SubmitVisionRequestSchema,
        request: req,
        output: SubmitVisionResponseSchema,
      };
      return idempotent(deps, ctx, principal, call, async (tx) => {
        // The project row lock serializes submissions, so versions never collide.
        const { project } = await access(tx.client, principal, req.projectId, "SubmitVision", { lock: true });
        assertActive(project);
        const current = await currentVisionVersion(tx.client, project.id);
        if (req.baseVersion !== 0n && req.baseVersion !== current) {
          throw aborted(
            `vision is at version ${current}, not ${req.baseVersion}; re-read and retry`,
            "VERSION_MISMATCH",
          );
        }
        const row: VisionRow = {
          projectId: project.id,
          version: current + 1n,
          problem: input.problem,
          constraints: input.constraints,
          successCriteria: input.successCriteria,
          author: principal.id,
          createTime: tx.now,
        };
        await insertVision(tx.client, row);
        await tx.emit(visionSubmitted(row));
        return create(SubmitVisionResponseSchema, { vision: visionMessage(row) });
      });
    },

    async getVision(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations().uuid("project_id", req.projectId);
      if (req.version < 0n) v.add("version", "must not be negative");
      v.throwIfAny("invalid GetVision request");
      const { project } = await access(deps.pool, principal, req.projectId, "GetVision");
      const row = await getVision(deps.pool, project.id, req.version);
      if (!row) {
        throw notFound(
          "vision",
          req.version === 0n ? `${project.id} (none submitted)` : `${project.id}@${req.version}`,
        );
      }
      return { vision: visionMessage(row) };
    },

    async listVisionVersions(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations().uuid("project_id", req.projectId).pageSize(req.pageSize);
      const pages = pageTokens({ p: req.projectId });
      const cursor = pages.cursorOf(req.pageToken, v, {
        arity: 1,
        valid: ([version]) => /^\d{1,18}$/.test(String(version)),
      });
      v.throwIfAny("invalid ListVisionVersions request");
      const { project } = await access(deps.pool, principal, req.projectId, "ListVisionVersions");
      const limit = clampPageSize(req.pageSize, PAGE_SIZES.visions);
      const before = cursor ? BigInt(String(cursor[0])) : undefined;
      const rows = await listVisions(deps.pool, project.id, before, limit + 1);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        visions: page.map(visionMessage),
        nextPageToken: rows.length > limit && last ? pages.encode([last.version.toString()]) : "",
      };
    },
  };
}
