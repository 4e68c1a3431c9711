/**
 * What the project service publishes: one builder per event of
 * proto/codex/events/v1/project_events.proto, from the rows after the change. Handlers
 * stage the result through the outbox in the transaction that made the change.
 */
import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  MemberAddedSchema,
  MemberRemovedSchema,
  MemberRoleChangedSchema,
  ProjectArchivedSchema,
  ProjectCreatedSchema,
  ProjectUpdatedSchema,
  QuotaExhaustedSchema,
  QuotaSetSchema,
  RequirementsApprovedSchema,
  RequirementsEditedSchema,
  RequirementsProposedSchema,
  RequirementsRejectedSchema,
  RequirementsSupersededSchema,
  RunSlotReleasedSchema,
  RunSlotReservedSchema,
  VisionSubmittedSchema,
} from "../../gen/codex/events/v1/project_events_pb.js";
import { MemberRole } from "../../gen/codex/project/v1/member_pb.js";
import { ProjectState } from "../../gen/codex/project/v1/project_pb.js";
import { ReservationState } from "../../gen/codex/project/v1/quota_pb.js";
import { RequirementsState } from "../../gen/codex/project/v1/requirements_pb.js";
import type { ProjectPath } from "./domain/field-mask.js";
import type { LimitName, Usage } from "./domain/quota-window.js";
import type { MemberRow } from "./store/members.js";
import type { ProjectRow } from "./store/projects.js";
import type { QuotaRow, ReservationRow } from "./store/quotas.js";
import type { DraftRow } from "./store/requirements.js";
import type { VisionRow } from "./store/visions.js";

export type AggregateType = "project" | "member" | "vision" | "requirements" | "quota";

/** One event ready for the outbox: typed payload plus the envelope's aggregate fields. */
export interface ProjectEvent<D extends DescMessage = DescMessage> {
  schema: D;
  payload: MessageShape<D>;
  aggregateType: AggregateType;
  aggregateId: string;
  /** Version of the aggregate after the event. */
  aggregateVersion: bigint;
  projectId: string;
}

function event<D extends DescMessage>(
  schema: D,
  payload: MessageShape<D>,
  aggregateType: AggregateType,
  aggregateId: string,
  aggregateVersion: bigint,
  projectId: string,
): ProjectEvent {
  return { schema, payload, aggregateType, aggregateId, aggregateVersion, projectId } as ProjectEvent;
}

const memberAggregate = (m: { projectId: string; principalId: string }) => `${m.projectId}:${m.principalId}`;

export function projectCreated(p: ProjectRow): ProjectEvent {
  const payload = create(ProjectCreatedSchema, {
    projectId: p.id,
    name: p.name,
    createdBy: p.createdBy,
    timestamp: timestampFromDate(p.createTime),
    displayName: p.displayName,
    description: p.description,
    labels: p.labels,
    state: ProjectState.ACTIVE,
  });
  return event(ProjectCreatedSchema, payload, "project", p.id, p.version, p.id);
}

export function projectUpdated(p: ProjectRow, changed: readonly ProjectPath[]): ProjectEvent {
  const payload = create(ProjectUpdatedSchema, {
    projectId: p.id,
    changedFields: [...changed],
    displayName: p.displayName,
    description: p.description,
    labels: p.labels,
  });
  return event(ProjectUpdatedSchema, payload, "project", p.id, p.version, p.id);
}

export function projectArchived(p: ProjectRow, reason: string): ProjectEvent {
  const payload = create(ProjectArchivedSchema, {
    projectId: p.id,
    name: p.name,
    reason,
    state: ProjectState.ARCHIVED,
  });
  return event(ProjectArchivedSchema, payload, "project", p.id, p.version, p.id);
}

export function memberAdded(m: MemberRow): ProjectEvent {
  const payload = create(MemberAddedSchema, {
    projectId: m.projectId,
    principalId: m.principalId,
    principalType: m.principalType,
    role: m.role,
  });
  return event(MemberAddedSchema, payload, "member", memberAggregate(m), m.version, m.projectId);
}

export function memberRemoved(m: MemberRow): ProjectEvent {
  const payload = create(MemberRemovedSchema, {
    projectId: m.projectId,
    principalId: m.principalId,
    previousRole: m.role,
    role: MemberRole.UNSPECIFIED,
  });
  return event(MemberRemovedSchema, payload, "member", memberAggregate(m), m.version + 1n, m.projectId);
}

export function memberRoleChanged(m: MemberRow, previousRole: number): ProjectEvent {
  const payload = create(MemberRoleChangedSchema, {
    projectId: m.projectId,
    principalId: m.principalId,
    previousRole,
    role: m.role,
  });
  return event(MemberRoleChangedSchema, payload, "member", memberAggregate(m), m.version, m.projectId);
}

export function visionSubmitted(v: VisionRow): ProjectEvent {
  const payload = create(VisionSubmittedSchema, {
    projectId: v.projectId,
    version: v.version,
    problem: v.problem,
    constraints: v.constraints,
    successCriteria: v.successCriteria,
  });
  return event(VisionSubmittedSchema, payload, "vision", v.projectId, v.version, v.projectId);
}

export function requirementsProposed(d: DraftRow): ProjectEvent {
  const payload = create(RequirementsProposedSchema, {
    requirementsId: d.id,
    projectId: d.projectId,
    version: d.contentVersion,
    content: d.content,
    author: d.author,
    state: RequirementsState.PROPOSED,
  });
  return event(RequirementsProposedSchema, payload, "requirements", d.id, d.version, d.projectId);
}

export function requirementsEdited(d: DraftRow): ProjectEvent {
  const payload = create(RequirementsEditedSchema, {
    requirementsId: d.id,
    projectId: d.projectId,
    version: d.contentVersion,
    content: d.content,
    lastEditor: d.lastEditor,
  });
  return event(RequirementsEditedSchema, payload, "requirements", d.id, d.version, d.projectId);
}

export function requirementsApproved(d: DraftRow, supersededId: string): ProjectEvent {
  const payload = create(RequirementsApprovedSchema, {
    requirementsId: d.id,
    projectId: d.projectId,
    version: d.contentVersion,
    decidedBy: d.decidedBy,
    decisionReason: d.decisionReason,
    supersededRequirementsId: supersededId,
    state: RequirementsState.APPROVED,
  });
  return event(RequirementsApprovedSchema, payload, "requirements", d.id, d.version, d.projectId);
}

export function requirementsRejected(d: DraftRow): ProjectEvent {
  const payload = create(RequirementsRejectedSchema, {
    requirementsId: d.id,
    projectId: d.projectId,
    version: d.contentVersion,
    decidedBy: d.decidedBy,
    decisionReason: d.decisionReason,
    state: RequirementsState.REJECTED,
  });
  return event(RequirementsRejectedSchema, payload, "requirements", d.id, d.version, d.projectId);
}

export function requirementsSuperseded(d: DraftRow): ProjectEvent {
  const payload = create(RequirementsSupersededSchema, {
    requirementsId: d.id,
    projectId: d.projectId,
    supersededBy: d.supersededBy ?? "",
    state: RequirementsState.SUPERSEDED,
  });
  return event(RequirementsSupersededSchema, payload, "requirements", d.id, d.version, d.projectId);
}

/** Quota events carry the quota row's event sequence, bumped by the caller before building. */
export function quotaSet(
  q: QuotaRow,
  limits: { runsPerDay: number; maxConcurrentRuns: number },
): ProjectEvent {
  const payload = create(QuotaSetSchema, {
    projectId: q.projectId,
    runsPerDay: limits.runsPerDay,
    maxConcurrentRuns: limits.maxConcurrentRuns,
    window: q.window,
  });
  return event(QuotaSetSchema, payload, "quota", q.projectId, q.eventSeq, q.projectId);
}

export function runSlotReserved(q: QuotaRow, r: ReservationRow, usage: Usage): ProjectEvent {
  const payload = create(RunSlotReservedSchema, {
    projectId: r.projectId,
    reservationKey: r.key,
    workItemId: r.workItemId,
    expireTime: timestampFromDate(r.expireTime),
    runsUsedInWindow: usage.runsUsed,
    concurrentInUse: usage.concurrentInUse,
  });
  return event(RunSlotReservedSchema, payload, "quota", q.projectId, q.eventSeq, q.projectId);
}

export function runSlotReleased(q: QuotaRow, r: ReservationRow, usage: Usage): ProjectEvent {
  const payload = create(RunSlotReleasedSchema, {
    projectId: r.projectId,
    reservationKey: r.key,
    workItemId: r.workItemId,
    consumed: r.state !== ReservationState.REFUNDED,
    reservationState: r.state,
    runsUsedInWindow: usage.runsUsed,
    concurrentInUse: usage.concurrentInUse,
  });
  return event(RunSlotReleasedSchema, payload, "quota", q.projectId, q.eventSeq, q.projectId);
}

export function quotaExhausted(q: QuotaRow, limit: LimitName, value: number, resetTime?: Date): ProjectEvent {
  const payload = create(QuotaExhaustedSchema, {
    projectId: q.projectId,
    limit,
    limitValue: value,
    ...(resetTime ? { resetTime: timestampFromDate(resetTime) } : {}),
  });
  return event(QuotaExhaustedSchema, payload, "quota", q.projectId, q.eventSeq, q.projectId);
}
