/**
 * Stored rows to API messages. The one place that knows how a row becomes a resource
 * (etags, defaults, timestamps), so every RPC returning a project or a draft returns the
 * same thing.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Member, MemberSchema } from "../../gen/codex/project/v1/member_pb.js";
import { type Project, ProjectSchema } from "../../gen/codex/project/v1/project_pb.js";
import {
  type Quota,
  QuotaSchema,
  type QuotaUsage,
  QuotaUsageSchema,
  type Reservation,
  ReservationSchema,
  ReservationState,
} from "../../gen/codex/project/v1/quota_pb.js";
import {
  type RequirementsDraft,
  RequirementsDraftSchema,
} from "../../gen/codex/project/v1/requirements_pb.js";
import { type Vision, VisionSchema } from "../../gen/codex/project/v1/vision_pb.js";
import { etagOf } from "./domain/etag.js";
import { type Limits, runsRemaining, type Usage, type Window } from "./domain/quota-window.js";
import type { MemberRow } from "./store/members.js";
import type { ProjectRow } from "./store/projects.js";
import type { QuotaRow, ReservationRow } from "./store/quotas.js";
import type { DraftRow } from "./store/requirements.js";
import type { VisionRow } from "./store/visions.js";

const ts = (d: Date) => timestampFromDate(d);

export const projectEtag = (p: ProjectRow) => etagOf("project", p.id, p.version);
export const memberEtag = (m: MemberRow) => etagOf("member", `${m.projectId}/${m.principalId}`, m.version);
export const draftEtag = (d: DraftRow) => etagOf("requirements", d.id, d.version);
export const quotaEtag = (q: QuotaRow) => etagOf("quota", q.projectId, q.version);

export function projectMessage(p: ProjectRow): Project {
  return create(ProjectSchema, {
    id: p.id,
    name: p.name,
    displayName: p.displayName,
    description: p.description,
    state: p.state,
    labels: p.labels,
    createTime: ts(p.createTime),
    updateTime: ts(p.updateTime),
    etag: projectEtag(p),
    createdBy: p.createdBy,
    ...(p.archiveTime ? { archiveTime: ts(p.archiveTime) } : {}),
  });
}

export function memberMessage(m: MemberRow): Member {
  return create(MemberSchema, {
    projectId: m.projectId,
    principalId: m.principalId,
    principalType: m.principalType,
    role: m.role,
    addTime: ts(m.addTime),
    updateTime: ts(m.updateTime),
    addedBy: m.addedBy,
    etag: memberEtag(m),
  });
}

export function visionMessage(v: VisionRow): Vision {
  return create(VisionSchema, {
    projectId: v.projectId,
    version: v.version,
    problem: v.problem,
    constraints: v.constraints,
    successCriteria: v.successCriteria,
    author: v.author,
    createTime: ts(v.createTime),
  });
}

export function draftMessage(d: DraftRow): RequirementsDraft {
  return create(RequirementsDraftSchema, {
    id: d.id,
    projectId: d.projectId,
    version: d.contentVersion,
    content: d.content,
    state: d.state,
    author: d.author,
    lastEditor: d.lastEditor,
    decidedBy: d.decidedBy,
    decisionReason: d.decisionReason,
    createTime: ts(d.createTime),
    updateTime: ts(d.updateTime),
    ...(d.decideTime ? { decideTime: ts(d.decideTime) } : {}),
    supersededBy: d.supersededBy ?? "",
    etag: draftEtag(d),
  });
}

/** Limits in force for a quota row: its own once set, the configured defaults before. */
export function limitsOf(q: QuotaRow, defaults: Limits): Limits {
  return {
    runsPerDay: q.runsPerDay ?? defaults.runsPerDay,
    maxConcurrentRuns: q.maxConcurrentRuns ?? defaults.maxConcurrentRuns,
  };
}

export function quotaMessage(q: QuotaRow, defaults: Limits): Quota {
  const limits = limitsOf(q, defaults);
  const isDefault = q.runsPerDay === null;
  return create(QuotaSchema, {
    projectId: q.projectId,
    runsPerDay: limits.runsPerDay,
    maxConcurrentRuns: limits.maxConcurrentRuns,
    window: q.window,
    isDefault,
    ...(q.updateTime && !isDefault ? { updateTime: ts(q.updateTime) } : {}),
    updatedBy: q.updatedBy,
    etag: quotaEtag(q),
  });
}

export function usageMessage(limits: Limits, usage: Usage, window: Window): QuotaUsage {
  return create(QuotaUsageSchema, {
    runsUsedInWindow: usage.runsUsed,
    runsRemainingInWindow: runsRemaining(limits, usage),
    concurrentInUse: usage.concurrentInUse,
    windowStartTime: ts(window.start),
    windowResetTime: ts(window.reset),
  });
}

export function reservationMessage(r: ReservationRow): Reservation {
  return create(ReservationSchema, {
    key: r.key,
    projectId: r.projectId,
    workItemId: r.workItemId,
    granted: r.state === ReservationState.HELD,
    state: r.state,
    resetTime: ts(r.windowReset),
    createTime: ts(r.createTime),
    expireTime: ts(r.expireTime),
    ...(r.releaseTime ? { releaseTime: ts(r.releaseTime) } : {}),
  });
}
