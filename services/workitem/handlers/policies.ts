import { create } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import {
  ApprovalPolicySetSchema,
  RiskRulesSetSchema,
} from "../../../gen/codex/events/v1/workitem_events_pb.js";
import {
  GetApprovalPolicyResponseSchema,
  SetApprovalPolicyRequestSchema,
  SetApprovalPolicyResponseSchema,
} from "../../../gen/codex/workitem/v1/approval_pb.js";
import {
  GetRiskRulesResponseSchema,
  SetRiskRulesRequestSchema,
  SetRiskRulesResponseSchema,
} from "../../../gen/codex/workitem/v1/risk_pb.js";
import { WorkItemKind } from "../../../gen/codex/workitem/v1/work_item_pb.js";
import type { WorkItemService } from "../../../gen/codex/workitem/v1/workitem_service_pb.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import type { Deps } from "../app/deps.js";
import { reassess, saveReassessed } from "../app/gate.js";
import { mutate } from "../app/mutation.js";
import { actorId, authorize, callerOf } from "../authz.js";
import { enumName, policyToProto, riskRulesToProto } from "../convert.js";
import { ENVIRONMENT, LABEL_KEY, MAX_LABEL_VALUE, PROJECT_ID } from "../domain/work-item-fields.js";
import { Violations } from "../errors.js";
import {
  DEFAULT_TTL_MS,
  getPolicy,
  getRiskRules,
  lockProject,
  putPolicy,
  putRiskRules,
} from "../store/policies.js";
import { getWorkItem, openItemIds } from "../store/work-items.js";
import { checkEtag } from "./access.js";

type Impl = ServiceImpl<typeof WorkItemService>;

const ROLES = ["owner", "maintainer", "viewer", "agent"];
const MIN_TTL_MS = 5 * 60 * 1000;
const MAX_TTL_MS = 30 * 24 * 60 * 60 * 1000;

function projectOf(projectId: string, field: string): string {
  const v = new Violations();
  if (!PROJECT_ID.test(projectId)) v.add(field, "must be a project id");
  v.throwIfAny();
  return projectId;
}

/** Per-project approval policy and risk rules (owners change them; every member reads them). */
export function policyHandlers(
  deps: Deps,
): Pick<Impl, "getApprovalPolicy" | "setApprovalPolicy" | "getRiskRules" | "setRiskRules"> {
  return {
    async getApprovalPolicy(req, ctx) {
      const caller = callerOf(ctx);
      const projectId = projectOf(req.projectId, "project_id");
      authorize(caller, projectId, "read", { type: "project", name: projectId });
      return create(GetApprovalPolicyResponseSchema, {
        policy: policyToProto(await getPolicy(deps.pool, projectId)),
      });
    },

    async setApprovalPolicy(req, ctx) {
      const caller = callerOf(ctx);
      const p = req.policy;
      const projectId = projectOf(p?.projectId ?? "", "policy.project_id");
      authorize(caller, projectId, "admin", { type: "project", name: projectId });
      const v = new Violations();
      const required = p?.requiredApprovals ?? 0;
      if (required < 1 || required > 10) v.add("policy.required_approvals", "must be 1-10");
      const ttlMs = p?.ttl ? durationMs(p.ttl) : DEFAULT_TTL_MS;
      if (ttlMs < MIN_TTL_MS || ttlMs > MAX_TTL_MS) v.add("policy.ttl", "must be between 5m and 30d");
      const roles = [...new Set(p?.approverRoles ?? [])];
      roles.forEach((r, i) => {
        if (!ROLES.includes(r)) v.add(`policy.approver_roles[${i}]`, `must be one of ${ROLES.join(", ")}`);
      });
      v.throwIfAny();
      const m = {
        method: "SetApprovalPolicy",
        requestId: req.requestId,
        requestSchema: SetApprovalPolicyRequestSchema,
      };
      return mutate(
        deps,
        caller,
        { ...m, request: req, responseSchema: SetApprovalPolicyResponseSchema },
        async (tx) => {
          await lockProject(tx, projectId);
          const current = await getPolicy(tx, projectId);
          checkEtag(p?.etag ?? "", current.version, `projects/${projectId}/approval-policy`);
          const at = deps.now();
          const next = {
            ...current,
            requiredApprovals: required,
            ttlMs,
            approverRoles: roles,
            updatedBy: actorId(caller),
          };
          next.updateTime = at;
          next.version = await putPolicy(tx, next);
          const policy = policyToProto(next);
          await deps.events.stage(tx, caller, {
            schema: ApprovalPolicySetSchema,
            payload: create(ApprovalPolicySetSchema, { policy }),
            aggregateType: "approval_policy",
            aggregateId: projectId,
            aggregateVersion: next.version,
            projectId,
            at,
          });
          return create(SetApprovalPolicyResponseSchema, { policy });
        },
      );
    },

    async getRiskRules(req, ctx) {
      const caller = callerOf(ctx);
      const projectId = projectOf(req.projectId, "project_id");
      authorize(caller, projectId, "read", { type: "project", name: projectId });
      return create(GetRiskRulesResponseSchema, {
        riskRules: riskRulesToProto(await getRiskRules(deps.pool, projectId)),
      });
    },

    async setRiskRules(req, ctx) {
      const caller = callerOf(ctx);
      const r = req.riskRules;
      const projectId = projectOf(r?.projectId ?? "", "risk_rules.project_id");
      authorize(caller, projectId, "admin", { type: "project", name: projectId });
      const v = new Violations();
      const kinds: string[] = [];
      (r?.kinds ?? []).forEach((k, i) => {
        const name = enumName(WorkItemKind, k);
        if (name) kinds.push(name);
        else v.add(`risk_rules.kinds[${i}]`, "must be a known, specified kind");
      });
      const environments = r?.environments ?? [];
      if (environments.length > 32) v.add("risk_rules.environments", "must have at most 32 entries");
      environments.forEach((e, i) => {
        if (e.trim() === "" || !ENVIRONMENT.test(e.trim().toLowerCase()))
          v.add(`risk_rules.environments[${i}]`, "must be 1-63 characters of [a-z0-9-]");
      });
      const selectors = (r?.labelSelectors ?? []).map((s) => ({ ...s.matchLabels }));
      if (selectors.length > 32) v.add("risk_rules.label_selectors", "must have at most 32 entries");
      selectors.forEach((s, i) => {
        const entries = Object.entries(s);
        if (entries.length > 16) v.add(`risk_rules.label_selectors[${i}]`, "must have at most 16 entries");
        for (const [key, value] of entries) {
          if (!LABEL_KEY.test(key) || [...value].length > MAX_LABEL_VALUE)
            v.add(
              `risk_rules.label_selectors[${i}].match_labels`,
              `malformed label ${JSON.stringify(key.slice(0, 70))}`,
            );
        }
      });
      v.throwIfAny();
      const m = {
        method: "SetRiskRules",
        requestId: req.requestId,
        requestSchema: SetRiskRulesRequestSchema,
      };
      return mutate(
        deps,
        caller,
        { ...m, request: req, responseSchema: SetRiskRulesResponseSchema },
        async (tx) => {
          // Exclusive: no item of the project is created against the old rules meanwhile.
          await lockProject(tx, projectId);
          const current = await getRiskRules(tx, projectId);
          checkEtag(r?.etag ?? "", current.version, `projects/${projectId}/risk-rules`);
          const at = deps.now();
          const next = {
            ...current,
            rules: { kinds, environments, networkTools: r?.networkTools ?? false, labelSelectors: selectors },
            updatedBy: actorId(caller),
            updateTime: at,
          };
          next.version = await putRiskRules(tx, next);
          const riskRules = riskRulesToProto(next);
          await deps.events.stage(tx, caller, {
            schema: RiskRulesSetSchema,
            payload: create(RiskRulesSetSchema, { riskRules }),
            aggregateType: "risk_rules",
            aggregateId: projectId,
            aggregateVersion: next.version,
            projectId,
            at,
          });
          for (const id of await openItemIds(tx, projectId)) {
            const item = await getWorkItem(tx, id, true);
            if (!item) continue;
            const onBehalfOf = item.createdBy;
            if (await reassess(tx, deps, caller, item, { scopeChanged: false, onBehalfOf, at })) {
              await saveReassessed(tx, deps, caller, item, at);
            }
          }
          return create(SetRiskRulesResponseSchema, { riskRules });
        },
      );
    },
  };
}
