import { AlertKind } from "../../../gen/codex/notification/v1/subscription_pb.js";
import { EVENTS_PACKAGE, NOTIFICATION_DEAD_LETTERED } from "./matching.js";

/**
 * Alert rules: which events count towards a rule and under which key. Pure; when a rule fires is
 * domain/alert-firing.ts, and the counting state (occurrences, firings) lives in Postgres
 * (store/alerts.ts).
 *
 * Payloads are read as proto JSON with proto field names (enum values by name), so rules do not
 * depend on the generated types of other services' events being present.
 */

/** One event counted by a rule: counted once per `occurrenceId` under `key`. */
export interface Occurrence {
  key: string;
  /**
   * Identity of what happened. A run failure is reported twice (RunCompleted FAILED, then the
   * work item entering FAILED with that run id); keying both on the run id counts it once.
   */
  occurrenceId: string;
}

/** The event facts rules look at. */
export interface AlertEvent {
  id: string;
  type: string;
  projectId: string;
  aggregateId: string;
  /** Payload as proto JSON (proto field names); undefined when the type is unknown here. */
  payload: Record<string, unknown> | undefined;
}

/** A rule's numbers, durations in milliseconds. */
export interface AlertThresholds {
  threshold: number;
  windowMs: number;
  cooldownMs: number;
}

const T = (name: string) => `${EVENTS_PACKAGE}.${name}`;

function str(payload: Record<string, unknown> | undefined, field: string): string {
  const v = payload?.[field];
  return typeof v === "string" ? v : "";
}

/**
 * The event types a rule of `kind` may count: {@link occurrenceOf} returns undefined for every
 * other type, so the consumer skips converting their payloads to JSON at all.
 */
export function countedTypes(kind: AlertKind): readonly string[] {
  switch (kind) {
    case AlertKind.WORK_ITEM_FAILED_N_TIMES:
      return [T("WorkItemStateChanged"), T("RunCompleted")];
    case AlertKind.AGENT_LOST:
      return [T("AgentLost")];
    case AlertKind.RUN_LEASE_EXPIRED:
      return [T("RunLeaseExpired")];
    case AlertKind.QUOTA_EXHAUSTED:
      return [T("QuotaExhausted")];
    case AlertKind.DELIVERIES_DEAD_LETTERED:
      return [NOTIFICATION_DEAD_LETTERED];
    default:
      return [];
  }
}

/** Whether `event` counts for a rule of `kind` on subscription `sub`, and under which key. */
export function occurrenceOf(
  kind: AlertKind,
  sub: { id: string; projectId: string },
  event: AlertEvent,
): Occurrence | undefined {
  const p = event.payload;
  switch (kind) {
    case AlertKind.WORK_ITEM_FAILED_N_TIMES: {
      const failedItem =
        event.type === T("WorkItemStateChanged") && str(p, "new_state") === "WORK_ITEM_STATE_FAILED";
      const failedRun = event.type === T("RunCompleted") && str(p, "status") === "RUN_STATE_FAILED";
      if (!failedItem && !failedRun) return undefined;
      const key = str(p, "work_item_id") || (failedItem ? event.aggregateId : "");
      if (key === "") return undefined;
      return { key, occurrenceId: str(p, "run_id") || event.id };
    }
    case AlertKind.AGENT_LOST:
      if (event.type !== T("AgentLost")) return undefined;
      return { key: sub.projectId === "" ? "*" : event.projectId, occurrenceId: event.id };
    case AlertKind.RUN_LEASE_EXPIRED:
      if (event.type !== T("RunLeaseExpired")) return undefined;
      return { key: event.projectId || "*", occurrenceId: event.id };
    case AlertKind.QUOTA_EXHAUSTED:
      if (event.type !== T("QuotaExhausted")) return undefined;
      return { key: str(p, "project_id") || event.projectId || "*", occurrenceId: event.id };
    case AlertKind.DELIVERIES_DEAD_LETTERED: {
      if (event.type !== NOTIFICATION_DEAD_LETTERED) return undefined;
      const failed = str(p, "subscription_id");
      // An alert about its own dead letters would feed itself.
      if (failed === "" || failed === sub.id) return undefined;
      return { key: failed, occurrenceId: event.id };
    }
    default:
      return undefined;
  }
}

/** Short name of an alert kind for templates (`alert.kind`), e.g. "WORK_ITEM_FAILED_N_TIMES". */
export function alertKindName(kind: AlertKind): string {
  return AlertKind[kind] ?? "UNSPECIFIED";
}

/** "90s", "5m", "2h", "1d" — how `alert.window` renders. */
export function formatDuration(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, "d"],
    [3_600_000, "h"],
    [60_000, "m"],
    [1_000, "s"],
  ];
  for (const [size, unit] of units) if (ms % size === 0 && ms >= size) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
