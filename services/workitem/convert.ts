import { create } from "@bufbuild/protobuf";
import { type Duration, durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ApprovalDecision_Decision,
  type ApprovalPolicy,
  ApprovalPolicySchema,
  type ApprovalRequest,
  ApprovalRequestSchema,
  ApprovalState,
} from "../../gen/codex/workitem/v1/approval_pb.js";
import { type Artifact, ArtifactSchema } from "../../gen/codex/workitem/v1/artifact_pb.js";
import { type ToolRecipe, ToolRecipeSchema } from "../../gen/codex/workitem/v1/recipe_pb.js";
import { type RiskRules, RiskRulesSchema } from "../../gen/codex/workitem/v1/risk_pb.js";
import {
  ApprovalStatus,
  type WorkItem,
  WorkItemKind,
  WorkItemSchema,
  WorkItemState,
} from "../../gen/codex/workitem/v1/work_item_pb.js";
import type { ParsedRecipe } from "./domain/recipe/index.js";
import type { WorkItemState as StateName } from "./domain/state-machine.js";
import type { ApprovalRow } from "./store/approvals.js";
import type { ArtifactRow } from "./store/artifacts.js";
import type { PolicyRow, RiskRulesRow } from "./store/policies.js";
import type { RecipeRow } from "./store/recipes.js";
import type { ApprovalStatusName, WorkItemRow } from "./store/work-items.js";

/**
 * The one boundary between stored rows (domain names as strings) and the contract's
 * messages (enums). protobuf-es strips enum prefixes, so `WorkItemState.QUEUED` and the
 * domain's "QUEUED" share a name and the mapping is a lookup.
 */
export const stateToProto = (s: StateName): WorkItemState => WorkItemState[s];
export const kindToProto = (k: string): WorkItemKind => WorkItemKind[k as keyof typeof WorkItemKind] ?? 0;
export const approvalStatusToProto = (s: ApprovalStatusName): ApprovalStatus => ApprovalStatus[s];

/** The domain name of a proto enum value, or undefined for UNSPECIFIED and unknown numbers. */
export function enumName<E extends Record<string, string | number>>(e: E, value: number): string | undefined {
  const name = (e as Record<number, string>)[value];
  return name === undefined || name === "UNSPECIFIED" ? undefined : name;
}

/** Opaque version tags: any change of the row changes its version. */
export const etagOf = (version: number): string => `"${version}"`;

export function workItemToProto(w: WorkItemRow): WorkItem {
  return create(WorkItemSchema, {
    id: w.id,
    projectId: w.projectId,
    title: w.title,
    description: w.description,
    kind: kindToProto(w.kind),
    labels: { ...w.labels },
    state: stateToProto(w.state),
    stateReason: w.stateReason,
    environment: w.environment,
    recipeVersion: w.recipeVersion,
    risk: { risky: w.risky, reasons: [...w.riskReasons] },
    approvalStatus: approvalStatusToProto(w.approvalStatus),
    approvalRequestId: w.approvalRequestId ?? "",
    reviewRequired: w.reviewRequired,
    taskId: w.taskId,
    createdBy: w.createdBy,
    createTime: timestampFromDate(w.createTime),
    updateTime: timestampFromDate(w.updateTime),
    stateChangeTime: timestampFromDate(w.stateChangeTime),
    etag: etagOf(w.version),
  });
}

/** The typed form of a parsed recipe (work item, version and authorship left to the caller). */
export function parsedRecipeToProto(parsed: ParsedRecipe, sha256: string, sourceYaml: string): ToolRecipe {
  return create(ToolRecipeSchema, {
    tools: parsed.tools.map((t) => ({
      name: t.name,
      version: t.version,
      checksum: t.checksum,
      env: { ...t.env },
      network: t.network,
    })),
    steps: parsed.steps.map((s) => {
      const step: { run: string; env: Record<string, string>; cwd: string; timeout?: Duration } = {
        run: s.run,
        env: { ...s.env },
        cwd: s.cwd ?? "",
      };
      if (s.timeoutMs !== undefined) step.timeout = durationFromMs(s.timeoutMs);
      return step;
    }),
    sourceYaml,
    sha256,
  });
}

export function recipeToProto(r: RecipeRow): ToolRecipe {
  const msg = parsedRecipeToProto(r.parsed, r.sha256, r.sourceYaml);
  msg.workItemId = r.workItemId;
  msg.version = r.version;
  msg.createdBy = r.createdBy;
  msg.createTime = timestampFromDate(r.createTime);
  return msg;
}

export function approvalToProto(a: ApprovalRow): ApprovalRequest {
  return create(ApprovalRequestSchema, {
    id: a.id,
    workItemId: a.workItemId,
    projectId: a.projectId,
    recipeVersion: a.recipeVersion,
    requestedBy: a.requestedBy,
    onBehalfOf: a.onBehalfOf,
    reason: a.reason,
    state: ApprovalState[a.state],
    requiredApprovals: a.requiredApprovals,
    approverRoles: [...a.approverRoles],
    decisions: a.decisions.map((d) => ({
      approver: d.approver,
      decision: ApprovalDecision_Decision[d.decision],
      reason: d.reason,
      decideTime: timestampFromDate(d.time),
    })),
    createTime: timestampFromDate(a.createTime),
    expireTime: timestampFromDate(a.expireTime),
    ...(a.resolveTime ? { resolveTime: timestampFromDate(a.resolveTime) } : {}),
    etag: etagOf(a.version),
  });
}

export function policyToProto(p: PolicyRow): ApprovalPolicy {
  return create(ApprovalPolicySchema, {
    projectId: p.projectId,
    requiredApprovals: p.requiredApprovals,
    ttl: durationFromMs(p.ttlMs),
    approverRoles: [...p.approverRoles],
    updatedBy: p.updatedBy,
    ...(p.updateTime ? { updateTime: timestampFromDate(p.updateTime) } : {}),
    etag: etagOf(p.version),
  });
}

export function riskRulesToProto(r: RiskRulesRow): RiskRules {
  return create(RiskRulesSchema, {
    projectId: r.projectId,
    kinds: r.rules.kinds.map(kindToProto),
    environments: [...r.rules.environments],
    networkTools: r.rules.networkTools,
    labelSelectors: r.rules.labelSelectors.map((s) => ({ matchLabels: { ...s } })),
    updatedBy: r.updatedBy,
    ...(r.updateTime ? { updateTime: timestampFromDate(r.updateTime) } : {}),
    etag: etagOf(r.version),
  });
}

export function artifactToProto(a: ArtifactRow): Artifact {
  return create(ArtifactSchema, {
    id: a.id,
    workItemId: a.workItemId,
    projectId: a.projectId,
    runId: a.runId,
    name: a.name,
    contentType: a.contentType,
    sizeBytes: BigInt(a.sizeBytes),
    sha256: a.sha256,
    createdBy: a.createdBy,
    createTime: timestampFromDate(a.createTime),
  });
}
