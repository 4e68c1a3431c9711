import { create } from "@bufbuild/protobuf";
import { WorkItemDeletedSchema } from "../../../gen/codex/events/v1/workitem_events_pb.js";
import {
  CancelWorkItemRequestSchema,
  CancelWorkItemResponseSchema,
  DeleteWorkItemResponseSchema,
  TransitionWorkItemRequestSchema,
  TransitionWorkItemResponseSchema,
  WorkItemState,
} from "../../../gen/codex/workitem/v1/work_item_pb.js";
import type { WorkItemService } from "../../../gen/codex/workitem/v1/workitem_service_pb.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import type { Deps } from "../app/deps.js";
import { mutate } from "../app/mutation.js";
import { applyTransition, checkTransition } from "../app/transitions.js";
import { callerOf, isService } from "../authz.js";
import { enumName, workItemToProto } from "../convert.js";
import type { WorkItemState as StateName } from "../domain/state-machine.js";
import { checkReason } from "../domain/work-item-fields.js";
import { notFound, permissionDenied, Violations, wrongState } from "../errors.js";
import { countArtifacts } from "../store/artifacts.js";
import { deleteWorkItem, getWorkItem } from "../store/work-items.js";
import { checkEtag, itemForChange, requireId } from "./access.js";

type Impl = ServiceImpl<typeof WorkItemService>;

/** Moves that must say why: they stop work someone may be waiting for. */
const REASON_REQUIRED: readonly StateName[] = ["BLOCKED", "FAILED", "CANCELLED"];

/** State changes: transition, cancel, and the saga's compensating delete. */
export function lifecycleHandlers(
  deps: Deps,
): Pick<Impl, "transitionWorkItem" | "cancelWorkItem" | "deleteWorkItem"> {
  return {
    async transitionWorkItem(req, ctx) {
      const caller = callerOf(ctx);
      const id = requireId(req.workItemId, "work_item_id");
      const v = new Violations();
      const to = enumName(WorkItemState, req.toState) as StateName | undefined;
      if (!to) v.add("to_state", "is required");
      for (const p of checkReason(req.reason)) v.add(p.field, p.description);
      if (to && REASON_REQUIRED.includes(to) && req.reason.trim() === "")
        v.add("reason", `is required when moving to ${to}`);
      v.throwIfAny();
      if (!to) return create(TransitionWorkItemResponseSchema);
      const m = {
        method: "TransitionWorkItem",
        requestId: req.requestId,
        requestSchema: TransitionWorkItemRequestSchema,
      };
      return mutate(
        deps,
        caller,
        { ...m, request: req, responseSchema: TransitionWorkItemResponseSchema },
        async (tx) => {
          const item = await itemForChange(tx, caller, id, req.etag);
          // Moving to the current state is a no-op that succeeds, so retries are safe.
          if (item.state === to)
            return create(TransitionWorkItemResponseSchema, { workItem: workItemToProto(item) });
          checkTransition(item, to, caller);
          const saved = await applyTransition(tx, deps, caller, item, to, req.reason.trim(), deps.now());
          return create(TransitionWorkItemResponseSchema, { workItem: workItemToProto(saved) });
        },
      );
    },

    async cancelWorkItem(req, ctx) {
      const caller = callerOf(ctx);
      const id = requireId(req.workItemId, "work_item_id");
      const v = new Violations();
      for (const p of checkReason(req.reason)) v.add(p.field, p.description);
      v.throwIfAny();
      const m = {
        method: "CancelWorkItem",
        requestId: req.requestId,
        requestSchema: CancelWorkItemRequestSchema,
      };
      return mutate(
        deps,
        caller,
        { ...m, request: req, responseSchema: CancelWorkItemResponseSchema },
        async (tx) => {
          const item = await itemForChange(tx, caller, id, req.etag);
          if (item.state === "CANCELLED")
            return create(CancelWorkItemResponseSchema, { workItem: workItemToProto(item) });
          checkTransition(item, "CANCELLED", caller);
          const saved = await applyTransition(
            tx,
            deps,
            caller,
            item,
            "CANCELLED",
            req.reason.trim(),
            deps.now(),
          );
          return create(CancelWorkItemResponseSchema, { workItem: workItemToProto(saved) });
        },
      );
    },

    async deleteWorkItem(req, ctx) {
      const caller = callerOf(ctx);
      if (!isService(caller))
        throw permissionDenied("DeleteWorkItem is internal to the orchestrator's services");
      const id = requireId(req.workItemId, "work_item_id");
      return withTransaction(deps.pool, async (tx) => {
        const item = await getWorkItem(tx, id, true);
        if (!item) {
          if (req.allowMissing) return create(DeleteWorkItemResponseSchema);
          throw notFound("work_item", id);
        }
        checkEtag(req.etag, item.version, `work_items/${id}`);
        if (item.state !== "PROPOSED" && item.state !== "APPROVED") {
          throw wrongState(
            `work_items/${id}`,
            item.state,
            `work item is ${item.state}; only items that never ran can be deleted`,
          );
        }
        if ((await countArtifacts(tx, id)) > 0) {
          throw wrongState(`work_items/${id}`, item.state, "work item has artifacts and cannot be deleted");
        }
        await deleteWorkItem(tx, id);
        await deps.events.stage(tx, caller, {
          schema: WorkItemDeletedSchema,
          payload: create(WorkItemDeletedSchema, {
            workItemId: id,
            projectId: item.projectId,
            reason: req.reason,
          }),
          aggregateType: "work_item",
          aggregateId: id,
          aggregateVersion: item.version + 1,
          projectId: item.projectId,
          at: deps.now(),
        });
        return create(DeleteWorkItemResponseSchema);
      });
    },
  };
}
