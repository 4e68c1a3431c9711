import { create } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import type { PoolClient } from "pg";
import {
  ApprovalState,
  ApproveRequestRequestSchema,
  ApproveRequestResponseSchema,
  GetApprovalRequestResponseSchema,
  ListApprovalRequestsResponseSchema,
  RejectRequestRequestSchema,
  RejectRequestResponseSchema,
  RequestApprovalRequestSchema,
  RequestApprovalResponseSchema,
} from "../../../gen/codex/workitem/v1/approval_pb.js";
import type { WorkItemService } from "../../../gen/codex/workitem/v1/workitem_service_pb.js";
import type { Principal } from "../../../mesh/context.js";
import type { CallContext, ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import { pageTokens } from "../../../mesh/pagination/page-token.js";
import { recordDecision } from "../app/decide.js";
import type { Deps } from "../app/deps.js";
import { openApproval, saveReassessed } from "../app/gate.js";
import { mutate } from "../app/mutation.js";
import { actorId, authorize, callerOf, roleIn } from "../authz.js";
import { approvalToProto, enumName } from "../convert.js";
import type { DecisionKind } from "../domain/approval.js";
import { checkReason, PROJECT_ID } from "../domain/work-item-fields.js";
import { invalidArgument, notFound, Violations, wrongState } from "../errors.js";
import { getApproval, listApprovals, pendingApprovalOf, setApprovalState } from "../store/approvals.js";
import type { Db } from "../store/db.js";
import { getPolicy } from "../store/policies.js";
import { checkEtag, itemFor, itemForChange, requireId } from "./access.js";

type Impl = ServiceImpl<typeof WorkItemService>;

const MIN_TTL_MS = 5 * 60 * 1000;

/** A request the caller may read; outsiders get NOT_FOUND. */
async function requestFor(db: Db, caller: Principal, id: string) {
  const request = await getApproval(db, id);
  if (!request) throw notFound("approval_request", id);
  authorize(caller, request.projectId, "read", { type: "approval_request", name: id });
  return request;
}

/** Approval requests: open, decide, read and list. */
export function approvalHandlers(
  deps: Deps,
): Pick<
  Impl,
  "requestApproval" | "approveRequest" | "rejectRequest" | "getApprovalRequest" | "listApprovalRequests"
> {
  /** Validates a decision and returns the caller and the transactional work recording it. */
  async function prepare(
    kind: DecisionKind,
    req: { approvalRequestId: string; reason: string; etag: string },
    ctx: CallContext,
  ) {
    const caller = callerOf(ctx);
    const id = requireId(req.approvalRequestId, "approval_request_id");
    const v = new Violations();
    for (const p of checkReason(req.reason)) v.add(p.field, p.description);
    if (kind === "REJECT" && req.reason.trim() === "") v.add("reason", "is required to reject");
    v.throwIfAny();
    const { workItemId } = await requestFor(deps.pool, caller, id);
    const run = async (tx: PoolClient) => {
      // Lock order shared by every writer: the work item, then its approval request.
      const item = await itemFor(tx, caller, workItemId, "read", true);
      const request = await getApproval(tx, id, true);
      if (!request) throw notFound("approval_request", id);
      checkEtag(req.etag, request.version, `approval_requests/${id}`);
      return approvalToProto(await recordDecision(tx, deps, caller, item, request, kind, req.reason));
    };
    return { caller, run };
  }

  return {
    async requestApproval(req, ctx) {
      const caller = callerOf(ctx);
      const id = requireId(req.workItemId, "work_item_id");
      const v = new Violations();
      for (const p of checkReason(req.reason)) v.add(p.field, p.description);
      if (req.requiredApprovals < 0 || req.requiredApprovals > 10)
        v.add("required_approvals", "must be 0-10");
      const ttlMs = req.ttl ? durationMs(req.ttl) : undefined;
      if (ttlMs !== undefined && ttlMs < MIN_TTL_MS) v.add("ttl", "must be at least 5m");
      v.throwIfAny();
      const m = {
        method: "RequestApproval",
        requestId: req.requestId,
        requestSchema: RequestApprovalRequestSchema,
      };
      return mutate(
        deps,
        caller,
        { ...m, request: req, responseSchema: RequestApprovalResponseSchema },
        async (tx) => {
          const item = await itemForChange(tx, caller, id, req.etag);
          const subject = `work_items/${id}`;
          if (item.state === "DONE" || item.state === "CANCELLED") {
            throw wrongState(subject, item.state, `work item is ${item.state}; approval is moot`);
          }
          if (!item.risky)
            throw wrongState(subject, item.state, "work item is not risky and needs no approval");
          if (await pendingApprovalOf(tx, id)) {
            throw wrongState(
              subject,
              "PENDING",
              "a PENDING approval request already exists for this work item",
            );
          }
          const policy = await getPolicy(tx, item.projectId);
          if (req.requiredApprovals > 0 && req.requiredApprovals < policy.requiredApprovals) {
            throw invalidArgument("required_approvals is below the project's policy", [
              {
                field: "required_approvals",
                description: `must be at least the policy's ${policy.requiredApprovals}`,
              },
            ]);
          }
          if (ttlMs !== undefined && ttlMs > policy.ttlMs) {
            throw invalidArgument("ttl exceeds the project's policy", [
              { field: "ttl", description: `must be at most the policy's ${policy.ttlMs / 1000}s` },
            ]);
          }
          const at = deps.now();
          const previous = item.approvalRequestId
            ? await getApproval(tx, item.approvalRequestId, true)
            : undefined;
          if (previous?.state === "APPROVED") await setApprovalState(tx, previous.id, "CANCELLED", at);
          const opened = await openApproval(tx, deps, caller, item, {
            requestedBy: actorId(caller),
            onBehalfOf: actorId(caller),
            reason: req.reason.trim() || item.riskReasons.join("; "),
            at,
            overrides: {
              ...(req.requiredApprovals > 0 ? { requiredApprovals: req.requiredApprovals } : {}),
              ...(ttlMs !== undefined ? { ttlMs } : {}),
            },
          });
          await saveReassessed(tx, deps, caller, item, at);
          return create(RequestApprovalResponseSchema, { approvalRequest: approvalToProto(opened) });
        },
      );
    },

    async approveRequest(req, ctx) {
      const { caller, run } = await prepare("APPROVE", req, ctx);
      const m = {
        method: "ApproveRequest",
        requestId: req.requestId,
        requestSchema: ApproveRequestRequestSchema,
      };
      return mutate(
        deps,
        caller,
        { ...m, request: req, responseSchema: ApproveRequestResponseSchema },
        async (tx) => create(ApproveRequestResponseSchema, { approvalRequest: await run(tx) }),
      );
    },

    async rejectRequest(req, ctx) {
      const { caller, run } = await prepare("REJECT", req, ctx);
      const m = {
        method: "RejectRequest",
        requestId: req.requestId,
        requestSchema: RejectRequestRequestSchema,
      };
      return mutate(
        deps,
        caller,
        { ...m, request: req, responseSchema: RejectRequestResponseSchema },
        async (tx) => create(RejectRequestResponseSchema, { approvalRequest: await run(tx) }),
      );
    },

    async getApprovalRequest(req, ctx) {
      const caller = callerOf(ctx);
      const request = await requestFor(
        deps.pool,
        caller,
        requireId(req.approvalRequestId, "approval_request_id"),
      );
      return create(GetApprovalRequestResponseSchema, { approvalRequest: approvalToProto(request) });
    },

    async listApprovalRequests(req, ctx) {
      const caller = callerOf(ctx);
      const v = new Violations();
      if (req.projectId === "" && req.workItemId === "")
        v.add("project_id", "project_id or work_item_id is required");
      if (req.projectId !== "" && !PROJECT_ID.test(req.projectId))
        v.add("project_id", "must be a project id");
      const states: string[] = [];
      req.states.forEach((s, i) => {
        const name = enumName(ApprovalState, s);
        if (name) states.push(name);
        else v.add(`states[${i}]`, "must be a known, specified value");
      });
      const pages = pageTokens({
        p: req.projectId,
        w: req.workItemId,
        s: [...states].sort(),
        a: req.actionableByMe,
        c: actorId(caller),
      });
      const cursor = pages.cursorOf(req.pageToken, v, { arity: 2 });
      v.throwIfAny();
      let projectId = req.projectId;
      if (req.workItemId !== "") {
        const item = await itemFor(deps.pool, caller, requireId(req.workItemId, "work_item_id"), "read");
        // Filters combine with AND: an item of another project matches nothing.
        if (projectId !== "" && projectId !== item.projectId)
          return create(ListApprovalRequestsResponseSchema);
        projectId = item.projectId;
      }
      authorize(caller, projectId, "read", { type: "project", name: projectId });
      const limit = clampPageSize(req.pageSize, { default: 50, max: 500 });
      const rows = await listApprovals(deps.pool, {
        projectId,
        workItemId: req.workItemId,
        projectIds: undefined,
        states,
        ...(req.actionableByMe
          ? { actionableBy: { actor: actorId(caller), role: roleIn(caller, projectId), now: deps.now() } }
          : {}),
        ...(cursor ? { after: { createTime: new Date(Number(cursor[0])), id: String(cursor[1]) } } : {}),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return create(ListApprovalRequestsResponseSchema, {
        approvalRequests: page.map(approvalToProto),
        nextPageToken: rows.length > limit && last ? pages.encode([last.createTime.getTime(), last.id]) : "",
      });
    },
  };
}
