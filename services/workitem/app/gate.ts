import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type pg from "pg";
import {
  ApprovalCancelledSchema,
  ApprovalRequestedSchema,
  WorkItemUpdatedSchema,
} from "../../../gen/codex/events/v1/workitem_events_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { DEFAULT_APPROVER_ROLES } from "../authz.js";
import { approvalToProto, workItemToProto } from "../convert.js";
import { assessRisk } from "../domain/risk.js";
import {
  type ApprovalRow,
  getApproval,
  insertApproval,
  pendingApprovalOf,
  setApprovalState,
} from "../store/approvals.js";
import { getPolicy, getRiskRules } from "../store/policies.js";
import { getRecipe } from "../store/recipes.js";
import { saveWorkItem, type WorkItemRow } from "../store/work-items.js";
import type { Deps } from "./deps.js";

/** Per-item settings that may only be stricter than the project's policy. */
export interface Overrides {
  requiredApprovals?: number;
  ttlMs?: number;
}

/**
 * Opens a PENDING approval request for an item with the project's policy (or stricter
 * per-item overrides) copied into it, and points the item at it. The caller saves the item.
 */
export async function openApproval(
  tx: pg.PoolClient,
  deps: Deps,
  actor: Principal,
  item: WorkItemRow,
  o: {
    requestedBy: string;
    onBehalfOf: string;
    reason: string;
    at: Date;
    overrides?: Overrides;
    id?: string;
  },
): Promise<ApprovalRow> {
  const policy = await getPolicy(tx, item.projectId);
  const required = Math.max(policy.requiredApprovals, o.overrides?.requiredApprovals ?? 0);
  const ttlMs = Math.min(policy.ttlMs, o.overrides?.ttlMs ?? Number.POSITIVE_INFINITY);
  const row: ApprovalRow = {
    id: o.id ?? randomUUID(),
    workItemId: item.id,
    projectId: item.projectId,
    recipeVersion: item.recipeVersion,
    requestedBy: o.requestedBy,
    onBehalfOf: o.onBehalfOf,
    reason: o.reason,
    state: "PENDING",
    requiredApprovals: required,
    approverRoles: policy.approverRoles.length > 0 ? [...policy.approverRoles] : [...DEFAULT_APPROVER_ROLES],
    createTime: o.at,
    expireTime: new Date(o.at.getTime() + ttlMs),
    resolveTime: null,
    version: 1,
    decisions: [],
  };
  await insertApproval(tx, row);
  item.approvalStatus = "PENDING";
  item.approvalRequestId = row.id;
  await deps.events.stage(tx, actor, {
    schema: ApprovalRequestedSchema,
    payload: create(ApprovalRequestedSchema, { approvalRequest: approvalToProto(row) }),
    aggregateType: "approval_request",
    aggregateId: row.id,
    aggregateVersion: row.version,
    projectId: row.projectId,
    at: o.at,
  });
  return row;
}

/** Cancels an open (or granted) request, e.g. superseded or its item cancelled. */
export async function cancelApproval(
  tx: pg.PoolClient,
  deps: Deps,
  actor: Principal,
  request: ApprovalRow,
  reason: string,
  at: Date,
  supersededBy = "",
): Promise<void> {
  await setApprovalState(tx, request.id, "CANCELLED", at);
  await deps.events.stage(tx, actor, {
    schema: ApprovalCancelledSchema,
    payload: create(ApprovalCancelledSchema, {
      approvalRequestId: request.id,
      workItemId: request.workItemId,
      reason,
      supersededBy,
    }),
    aggregateType: "approval_request",
    aggregateId: request.id,
    aggregateVersion: request.version + 1,
    projectId: request.projectId,
    at,
  });
}

/**
 * Re-evaluates an item's risk against its project's rules and current recipe, and brings its
 * approval in line: an item that became risky gets a request; a risky item whose approved
 * scope changed (`scopeChanged`: recipe, kind or environment) has its PENDING or APPROVED
 * request superseded by a new one; an item no longer risky needs no approval and its open
 * request is cancelled. Mutates `item` (the caller saves it) and returns whether risk or
 * approval status changed.
 */
export async function reassess(
  tx: pg.PoolClient,
  deps: Deps,
  actor: Principal,
  item: WorkItemRow,
  o: { scopeChanged: boolean; onBehalfOf: string; at: Date },
): Promise<boolean> {
  const rules = (await getRiskRules(tx, item.projectId)).rules;
  const recipe =
    item.recipeVersion > 0 ? (await getRecipe(tx, item.id, item.recipeVersion))?.parsed : undefined;
  const risk = assessRisk(
    { kind: item.kind, environment: item.environment, labels: item.labels, ...(recipe ? { recipe } : {}) },
    rules,
  );
  const before = JSON.stringify([item.risky, item.riskReasons, item.approvalStatus, item.approvalRequestId]);
  item.risky = risk.risky;
  item.riskReasons = [...risk.reasons];
  const pending = await pendingApprovalOf(tx, item.id);
  if (!risk.risky) {
    if (pending) await cancelApproval(tx, deps, actor, pending, "work item is no longer risky", o.at);
    item.approvalStatus = "NOT_REQUIRED";
  } else {
    const stale = o.scopeChanged && (item.approvalStatus === "PENDING" || item.approvalStatus === "APPROVED");
    if (item.approvalStatus === "NOT_REQUIRED" || stale) {
      const previous =
        pending ?? (item.approvalRequestId ? await getApproval(tx, item.approvalRequestId, true) : undefined);
      const overrides: Overrides = previous
        ? {
            requiredApprovals: previous.requiredApprovals,
            ttlMs: previous.expireTime.getTime() - previous.createTime.getTime(),
          }
        : {};
      if (previous && (previous.state === "PENDING" || previous.state === "APPROVED")) {
        await setApprovalState(tx, previous.id, "CANCELLED", o.at);
      }
      const opened = await openApproval(tx, deps, actor, item, {
        requestedBy: "service:workitem",
        onBehalfOf: o.onBehalfOf,
        reason: risk.reasons.join("; "),
        at: o.at,
        ...(stale ? { overrides } : {}),
      });
      if (previous && (previous.state === "PENDING" || previous.state === "APPROVED")) {
        await deps.events.stage(tx, actor, {
          schema: ApprovalCancelledSchema,
          payload: create(ApprovalCancelledSchema, {
            approvalRequestId: previous.id,
            workItemId: item.id,
            reason: "superseded: the approved recipe, kind or environment changed",
            supersededBy: opened.id,
          }),
          aggregateType: "approval_request",
          aggregateId: previous.id,
          aggregateVersion: previous.version + 1,
          projectId: item.projectId,
          at: o.at,
        });
      }
    }
  }
  return (
    before !== JSON.stringify([item.risky, item.riskReasons, item.approvalStatus, item.approvalRequestId])
  );
}

/** Saves an item whose risk/approval changed outside UpdateWorkItem and announces it. */
export async function saveReassessed(
  tx: pg.PoolClient,
  deps: Deps,
  actor: Principal,
  item: WorkItemRow,
  at: Date,
): Promise<WorkItemRow> {
  item.updateTime = at;
  const saved = await saveWorkItem(tx, item);
  await deps.events.stage(tx, actor, {
    schema: WorkItemUpdatedSchema,
    payload: create(WorkItemUpdatedSchema, {
      workItem: workItemToProto(saved),
      updateMask: { paths: ["risk", "approval_status"] },
    }),
    aggregateType: "work_item",
    aggregateId: saved.id,
    aggregateVersion: saved.version,
    projectId: saved.projectId,
    at,
  });
  return saved;
}
