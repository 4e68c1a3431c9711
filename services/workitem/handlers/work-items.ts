import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import {
  WorkItemCreatedSchema,
  WorkItemUpdatedSchema,
} from "../../../gen/codex/events/v1/workitem_events_pb.js";
import {
  CreateWorkItemRequestSchema,
  CreateWorkItemResponseSchema,
  GetWorkItemResponseSchema,
  UpdateWorkItemRequestSchema,
  UpdateWorkItemResponseSchema,
  WorkItemKind,
} from "../../../gen/codex/workitem/v1/work_item_pb.js";
import type { WorkItemService } from "../../../gen/codex/workitem/v1/workitem_service_pb.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import type { Deps } from "../app/deps.js";
import { openApproval, reassess } from "../app/gate.js";
import { mutate } from "../app/mutation.js";
import { actorId, authorize, callerOf } from "../authz.js";
import { enumName, workItemToProto } from "../convert.js";
import { assessRisk } from "../domain/risk.js";
import {
  checkDescription,
  checkEnvironment,
  checkLabels,
  checkTitle,
  PROJECT_ID,
} from "../domain/work-item-fields.js";
import { Violations, wrongState } from "../errors.js";
import { getRiskRules, lockProjectShared } from "../store/policies.js";
import { insertWorkItem, saveWorkItem, type WorkItemRow } from "../store/work-items.js";
import { itemFor, itemForChange, requireId } from "./access.js";

type Impl = ServiceImpl<typeof WorkItemService>;

const EDITABLE = ["title", "description", "labels", "environment", "kind", "review_required"] as const;
type Editable = (typeof EDITABLE)[number];

/** Create, read and edit work items. */
export function workItemHandlers(
  deps: Deps,
): Pick<Impl, "createWorkItem" | "getWorkItem" | "updateWorkItem"> {
  return {
    async createWorkItem(req, ctx) {
      const caller = callerOf(ctx);
      const v = new Violations();
      if (!PROJECT_ID.test(req.projectId)) v.add("project_id", "must be a project id");
      v.throwIfAny();
      authorize(caller, req.projectId, "write", { type: "project", name: req.projectId });
      const w = req.workItem;
      if (!w) v.add("work_item", "is required");
      const kind = w ? enumName(WorkItemKind, w.kind) : undefined;
      if (w) {
        for (const p of [
          ...checkTitle(w.title),
          ...checkDescription(w.description),
          ...checkLabels(w.labels),
        ])
          v.add(p.field, p.description);
        for (const p of checkEnvironment(w.environment)) v.add(p.field, p.description);
        if (!kind) v.add("work_item.kind", "is required");
      }
      v.throwIfAny();
      if (!w || !kind) return create(CreateWorkItemResponseSchema);
      const m = {
        method: "CreateWorkItem",
        requestId: req.requestId,
        requestSchema: CreateWorkItemRequestSchema,
      };
      return mutate(
        deps,
        caller,
        { ...m, request: req, responseSchema: CreateWorkItemResponseSchema },
        async (tx) => {
          await lockProjectShared(tx, req.projectId);
          const at = deps.now();
          const labels = { ...w.labels };
          const risk = assessRisk(
            { kind, environment: w.environment, labels },
            (await getRiskRules(tx, req.projectId)).rules,
          );
          const item: WorkItemRow = {
            id: randomUUID(),
            projectId: req.projectId,
            title: w.title.trim(),
            description: w.description,
            kind,
            labels,
            state: risk.risky ? "PROPOSED" : "APPROVED",
            stateReason: "",
            blockedFrom: null,
            environment: w.environment,
            recipeVersion: 0,
            risky: risk.risky,
            riskReasons: [...risk.reasons],
            approvalStatus: risk.risky ? "PENDING" : "NOT_REQUIRED",
            approvalRequestId: risk.risky ? randomUUID() : null,
            reviewRequired: w.reviewRequired,
            taskId: "",
            createdBy: actorId(caller),
            createTime: at,
            updateTime: at,
            stateChangeTime: at,
            version: 1,
          };
          await insertWorkItem(tx, item);
          await deps.events.stage(tx, caller, {
            schema: WorkItemCreatedSchema,
            payload: create(WorkItemCreatedSchema, { workItem: workItemToProto(item) }),
            aggregateType: "work_item",
            aggregateId: item.id,
            aggregateVersion: item.version,
            projectId: item.projectId,
            at,
          });
          if (risk.risky && item.approvalRequestId) {
            await openApproval(tx, deps, caller, item, {
              id: item.approvalRequestId,
              requestedBy: "service:workitem",
              onBehalfOf: actorId(caller),
              reason: risk.reasons.join("; "),
              at,
            });
          }
          return create(CreateWorkItemResponseSchema, { workItem: workItemToProto(item) });
        },
      );
    },

    async getWorkItem(req, ctx) {
      const caller = callerOf(ctx);
      const item = await itemFor(deps.pool, caller, requireId(req.workItemId, "work_item_id"), "read");
      return create(GetWorkItemResponseSchema, { workItem: workItemToProto(item) });
    },

    async updateWorkItem(req, ctx) {
      const caller = callerOf(ctx);
      const w = req.workItem;
      const id = requireId(w?.id ?? "", "work_item.id");
      const v = new Violations();
      const paths = req.updateMask?.paths ?? [];
      if (paths.length === 0) v.add("update_mask", "must name at least one field");
      for (const p of paths) {
        if (p !== "*" && !(EDITABLE as readonly string[]).includes(p)) {
          v.add(
            "update_mask",
            `unknown or read-only path ${JSON.stringify(p.slice(0, 64))}; editable: ${EDITABLE.join(", ")}`,
          );
        }
      }
      v.throwIfAny();
      const mask = new Set<Editable>(paths.includes("*") ? EDITABLE : (paths as Editable[]));
      if (!w) return create(UpdateWorkItemResponseSchema);
      const kind = mask.has("kind") ? enumName(WorkItemKind, w.kind) : undefined;
      if (mask.has("title")) for (const p of checkTitle(w.title)) v.add(p.field, p.description);
      if (mask.has("description"))
        for (const p of checkDescription(w.description)) v.add(p.field, p.description);
      if (mask.has("labels")) for (const p of checkLabels(w.labels)) v.add(p.field, p.description);
      if (mask.has("environment"))
        for (const p of checkEnvironment(w.environment)) v.add(p.field, p.description);
      if (mask.has("kind") && !kind) v.add("work_item.kind", "is required");
      v.throwIfAny();
      const m = { method: "UpdateWorkItem", requestId: "", requestSchema: UpdateWorkItemRequestSchema };
      return mutate(
        deps,
        caller,
        { ...m, request: req, responseSchema: UpdateWorkItemResponseSchema },
        async (tx) => {
          const item = await itemForChange(tx, caller, id, w.etag);
          if (item.state === "DONE" || item.state === "CANCELLED") {
            throw wrongState(
              `work_items/${id}`,
              item.state,
              `work item is ${item.state} and can no longer be edited`,
            );
          }
          const next: WorkItemRow = { ...item, labels: { ...item.labels } };
          if (mask.has("title")) next.title = w.title.trim();
          if (mask.has("description")) next.description = w.description;
          if (mask.has("labels")) next.labels = { ...w.labels };
          if (mask.has("environment")) next.environment = w.environment;
          if (mask.has("kind") && kind) next.kind = kind;
          if (mask.has("review_required")) next.reviewRequired = w.reviewRequired;
          const changed = EDITABLE.filter((f) => differs(f, item, next));
          if (changed.length === 0)
            return create(UpdateWorkItemResponseSchema, { workItem: workItemToProto(item) });
          const scopeChanged = changed.includes("kind") || changed.includes("environment");
          if (scopeChanged && item.state !== "PROPOSED" && item.state !== "APPROVED") {
            throw wrongState(
              `work_items/${id}`,
              item.state,
              `kind and environment cannot change once the item left APPROVED (it is ${item.state})`,
            );
          }
          const at = deps.now();
          const reassessed =
            scopeChanged || changed.includes("labels")
              ? await reassess(tx, deps, caller, next, { scopeChanged, onBehalfOf: actorId(caller), at })
              : false;
          next.updateTime = at;
          const saved = await saveWorkItem(tx, next);
          await deps.events.stage(tx, caller, {
            schema: WorkItemUpdatedSchema,
            payload: create(WorkItemUpdatedSchema, {
              workItem: workItemToProto(saved),
              updateMask: { paths: reassessed ? [...changed, "risk", "approval_status"] : changed },
            }),
            aggregateType: "work_item",
            aggregateId: saved.id,
            aggregateVersion: saved.version,
            projectId: saved.projectId,
            at,
          });
          return create(UpdateWorkItemResponseSchema, { workItem: workItemToProto(saved) });
        },
      );
    },
  };
}

function differs(field: Editable, a: WorkItemRow, b: WorkItemRow): boolean {
  switch (field) {
    case "title":
      return a.title !== b.title;
    case "description":
      return a.description !== b.description;
    case "labels":
      return (
        JSON.stringify(Object.entries(a.labels).sort()) !== JSON.stringify(Object.entries(b.labels).sort())
      );
    case "environment":
      return a.environment !== b.environment;
    case "kind":
      return a.kind !== b.kind;
    case "review_required":
      return a.reviewRequired !== b.reviewRequired;
  }
}
