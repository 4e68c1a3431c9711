import { create } from "@bufbuild/protobuf";
import {
  ApprovalStatus,
  ListWorkItemsResponseSchema,
  WorkItemKind,
  WorkItemState,
} from "../../../gen/codex/workitem/v1/work_item_pb.js";
import type { WorkItemService } from "../../../gen/codex/workitem/v1/workitem_service_pb.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import { pageTokens } from "../../../mesh/pagination/page-token.js";
import type { Deps } from "../app/deps.js";
import { authorize, callerOf, readableProjects } from "../authz.js";
import { enumName, workItemToProto } from "../convert.js";
import { checkEnvironment, PROJECT_ID, parseLabelSelector } from "../domain/work-item-fields.js";
import { Violations } from "../errors.js";
import { listWorkItems } from "../store/work-items.js";

type Impl = ServiceImpl<typeof WorkItemService>;

/** Lists work items with typed filters and keyset pages, newest first. */
export function listWorkItemsHandler(deps: Deps): Pick<Impl, "listWorkItems"> {
  return {
    async listWorkItems(req, ctx) {
      const caller = callerOf(ctx);
      const v = new Violations();
      if (req.projectId !== "" && !PROJECT_ID.test(req.projectId))
        v.add("project_id", "must be a project id");
      const states = names(WorkItemState, req.states, "states", v);
      const kinds = names(WorkItemKind, req.kinds, "kinds", v);
      const approvalStatuses = names(ApprovalStatus, req.approvalStatuses, "approval_statuses", v);
      const selector = parseLabelSelector(req.labelSelector);
      for (const p of selector.problems) v.add(p.field, p.description);
      for (const p of checkEnvironment(req.environment, "environment")) v.add(p.field, p.description);
      const pages = pageTokens({
        p: req.projectId,
        s: [...states].sort(),
        k: [...kinds].sort(),
        l: [...req.labelSelector].sort(),
        e: req.environment,
        a: [...approvalStatuses].sort(),
      });
      const cursor = pages.cursorOf(req.pageToken, v, { arity: 2 });
      v.throwIfAny();
      let projectIds: string[] | undefined;
      if (req.projectId !== "") {
        authorize(caller, req.projectId, "read", { type: "project", name: req.projectId });
        projectIds = [req.projectId];
      } else {
        projectIds = readableProjects(caller);
      }
      const limit = clampPageSize(req.pageSize, { default: 50, max: 500 });
      const rows = await listWorkItems(deps.pool, {
        projectIds,
        states,
        kinds,
        labels: selector.requirements,
        environment: req.environment,
        approvalStatuses,
        ...(cursor ? { after: { createTime: new Date(Number(cursor[0])), id: String(cursor[1]) } } : {}),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return create(ListWorkItemsResponseSchema, {
        workItems: page.map(workItemToProto),
        nextPageToken: rows.length > limit && last ? pages.encode([last.createTime.getTime(), last.id]) : "",
      });
    },
  };
}

/** Enum filter values as names; UNSPECIFIED or unknown numbers are refused. */
function names<E extends Record<string, string | number>>(
  e: E,
  values: number[],
  field: string,
  v: Violations,
) {
  const out: string[] = [];
  values.forEach((value, i) => {
    const name = enumName(e, value);
    if (name) out.push(name);
    else v.add(`${field}[${i}]`, "must be a known, specified value");
  });
  return out;
}
