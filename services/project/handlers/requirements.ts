import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { ProjectService } from "../../../gen/codex/project/v1/project_service_pb.js";
import {
  ApproveRequirementsRequestSchema,
  ApproveRequirementsResponseSchema,
  ProposeRequirementsRequestSchema,
  ProposeRequirementsResponseSchema,
  RejectRequirementsRequestSchema,
  RejectRequirementsResponseSchema,
  RequirementsState,
} from "../../../gen/codex/project/v1/requirements_pb.js";
import { failedPrecondition, notFound } from "../../../mesh/errors.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { LIMITS } from "../domain/limits.js";
import { Violations } from "../domain/validation.js";
import {
  requirementsApproved,
  requirementsEdited,
  requirementsProposed,
  requirementsRejected,
  requirementsSuperseded,
} from "../events.js";
import { draftMessage } from "../resources.js";
import { uniqueViolation } from "../store/db.js";
import {
  type DraftRow,
  findByState,
  getDraft,
  insertDraft,
  insertRevision,
  saveDraft,
} from "../store/requirements.js";
import { access, callerOf, type Deps, inTransaction, type Tx } from "./context.js";
import { idempotent } from "./idempotency.js";
import { assertActive, assertEtag } from "./preconditions.js";

type Impl = ServiceImpl<typeof ProjectService>;
type Rpc = "EditRequirements" | "ApproveRequirements" | "RejectRequirements";

function pendingDraftExists(projectId: string, id: string) {
  return failedPrecondition(
    "another requirements draft is already PROPOSED: edit, approve or reject it first",
    [
      {
        type: "STATE",
        subject: `projects/${projectId}/requirements/${id}`,
        description: "draft is PROPOSED",
      },
    ],
    "DRAFT_PENDING",
  );
}

/** Validation shared by the RPCs that act on one existing draft. */
function checkDraftRef(
  v: Violations,
  req: { projectId: string; requirementsId: string; etag: string },
): void {
  v.uuid("project_id", req.projectId).uuid("requirements_id", req.requirementsId);
  if (req.etag === "") v.add("etag", "is required: send the etag of the draft as you read it");
}

/**
 * Loads a draft for a change under the project lock, checking role, project state, draft
 * state and etag, in that order: a decided draft answers FAILED_PRECONDITION even with an
 * old etag, since re-reading would not help.
 */
async function draftForChange(
  tx: Tx,
  principal: Parameters<typeof access>[1],
  req: { projectId: string; requirementsId: string; etag: string },
  rpc: Rpc,
): Promise<DraftRow> {
  const { project } = await access(tx.client, principal, req.projectId, rpc, { lock: true });
  assertActive(project);
  const draft = await getDraft(tx.client, project.id, req.requirementsId, 0n, true);
  if (!draft) throw notFound("requirements", req.requirementsId);
  if (draft.state !== RequirementsState.PROPOSED) {
    throw failedPrecondition(
      `requirements draft is ${RequirementsState[draft.state]}, not PROPOSED: it can no longer change`,
      [
        {
          type: "STATE",
          subject: `projects/${project.id}/requirements/${draft.id}`,
          description: "draft is decided",
        },
      ],
      "DRAFT_DECIDED",
    );
  }
  assertEtag(req.etag, "requirements", draft.id, draft.version, "requirements draft");
  return draft;
}

export function requirementsHandlers(
  deps: Deps,
): Pick<Impl, "proposeRequirements" | "editRequirements" | "approveRequirements" | "rejectRequirements"> {
  return {
    async proposeRequirements(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations().uuid("project_id", req.projectId);
      v.length("content", req.content, 1, LIMITS.requirementsContentMax);
      v.requestId("request_id", req.requestId);
      v.throwIfAny("invalid ProposeRequirements request");
      const call = {
        method: "ProposeRequirements",
        requestId: req.requestId,
        input: ProposeRequirementsRequestSchema,
        request: req,
        output: ProposeRequirementsResponseSchema,
      };
      try {
        return await idempotent(deps, ctx, principal, call, async (tx) => {
          const { project } = await access(tx.client, principal, req.projectId, "ProposeRequirements", {
            lock: true,
          });
          assertActive(project);
          const pending = await findByState(tx.client, project.id, RequirementsState.PROPOSED);
          if (pending) throw pendingDraftExists(project.id, pending.id);
          const draft: DraftRow = {
            id: randomUUID(),
            projectId: project.id,
            state: RequirementsState.PROPOSED,
            contentVersion: 1n,
            content: req.content,
            author: principal.id,
            lastEditor: principal.id,
            decidedBy: "",
            decisionReason: "",
            createTime: tx.now,
            updateTime: tx.now,
            decideTime: null,
            supersededBy: null,
            version: 1n,
          };
          await insertDraft(tx.client, draft);
          await tx.emit(requirementsProposed(draft));
          return create(ProposeRequirementsResponseSchema, { requirements: draftMessage(draft) });
        });
      } catch (err) {
        if (uniqueViolation(err) === "requirements_one_proposed")
          throw pendingDraftExists(req.projectId, "-");
        throw err;
      }
    },

    async editRequirements(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations();
      checkDraftRef(v, req);
      v.length("content", req.content, 1, LIMITS.requirementsContentMax);
      v.throwIfAny("invalid EditRequirements request");
      return inTransaction(deps, ctx, principal, async (tx) => {
        const draft = await draftForChange(tx, principal, req, "EditRequirements");
        const edited: DraftRow = {
          ...draft,
          contentVersion: draft.contentVersion + 1n,
          content: req.content,
          lastEditor: principal.id,
          updateTime: tx.now,
          version: draft.version + 1n,
        };
        await saveDraft(tx.client, edited);
        await insertRevision(tx.client, edited);
        await tx.emit(requirementsEdited(edited));
        return { requirements: draftMessage(edited) };
      });
    },

    async approveRequirements(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations();
      checkDraftRef(v, req);
      v.length("reason", req.reason, 0, LIMITS.decisionReasonMax);
      v.requestId("request_id", req.requestId);
      v.throwIfAny("invalid ApproveRequirements request");
      const call = {
        method: "ApproveRequirements",
        requestId: req.requestId,
        input: ApproveRequirementsRequestSchema,
        request: req,
        output: ApproveRequirementsResponseSchema,
      };
      return idempotent(deps, ctx, principal, call, async (tx) => {
        const draft = await draftForChange(tx, principal, req, "ApproveRequirements");
        const previous = await findByState(tx.client, draft.projectId, RequirementsState.APPROVED, true);
        if (previous) {
          // Superseded first: at most one APPROVED draft exists at every step, in the table
          // and in any projection folding the events in order.
          const superseded: DraftRow = {
            ...previous,
            state: RequirementsState.SUPERSEDED,
            supersededBy: draft.id,
            updateTime: tx.now,
            version: previous.version + 1n,
          };
          await saveDraft(tx.client, superseded);
          await tx.emit(requirementsSuperseded(superseded));
        }
        const approved: DraftRow = {
          ...draft,
          state: RequirementsState.APPROVED,
          decidedBy: principal.id,
          decisionReason: req.reason,
          decideTime: tx.now,
          updateTime: tx.now,
          version: draft.version + 1n,
        };
        await saveDraft(tx.client, approved);
        await tx.emit(requirementsApproved(approved, previous?.id ?? ""));
        return create(ApproveRequirementsResponseSchema, {
          requirements: draftMessage(approved),
          supersededRequirementsId: previous?.id ?? "",
        });
      });
    },

    async rejectRequirements(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations();
      checkDraftRef(v, req);
      v.length("reason", req.reason, 1, LIMITS.decisionReasonMax);
      v.requestId("request_id", req.requestId);
      v.throwIfAny("invalid RejectRequirements request");
      const call = {
        method: "RejectRequirements",
        requestId: req.requestId,
        input: RejectRequirementsRequestSchema,
        request: req,
        output: RejectRequirementsResponseSchema,
      };
      return idempotent(deps, ctx, principal, call, async (tx) => {
        const draft = await draftForChange(tx, principal, req, "RejectRequirements");
        const rejected: DraftRow = {
          ...draft,
          state: RequirementsState.REJECTED,
          decidedBy: principal.id,
          decisionReason: req.reason,
          decideTime: tx.now,
          updateTime: tx.now,
          version: draft.version + 1n,
        };
        await saveDraft(tx.client, rejected);
        await tx.emit(requirementsRejected(rejected));
        return create(RejectRequirementsResponseSchema, { requirements: draftMessage(rejected) });
      });
    },
  };
}
