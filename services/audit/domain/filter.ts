import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { FieldViolation } from "../../../mesh/errors.js";
import { compareTimestamps, isValidTimestamp } from "./timestamps.js";

/** At most this many event types per filter (the API's documented limit). */
export const MAX_EVENT_TYPES = 50;

/** What the store can filter records on; absent properties match everything. */
export interface RecordFilter {
  projectId?: string;
  aggregateType?: string;
  aggregateId?: string;
  actorId?: string;
  correlationId?: string;
  eventId?: string;
  /** Full names ("codex.events.v1.ProjectCreated"). */
  eventTypes?: string[];
  /** Short names ("ProjectCreated"), matched against the last segment of the type. */
  eventNames?: string[];
  /** occurred_at >= startTime. */
  startTime?: Timestamp;
  /** occurred_at < endTime. */
  endTime?: Timestamp;
  /** sequence <= maxSequence (an export's snapshot). */
  maxSequence?: bigint;
}

/** The filter fields a request may carry (Query and Export share them). */
export interface FilterInput {
  projectId: string;
  aggregateType: string;
  aggregateId?: string;
  actorId?: string;
  correlationId?: string;
  eventId?: string;
  eventTypes: readonly string[];
  startTime?: Timestamp | undefined;
  endTime?: Timestamp | undefined;
}

/**
 * Checks a request's filters and turns them into a {@link RecordFilter}. Returns every problem
 * at once, as BadRequest field violations, so a client fixes its request in one round.
 */
export function parseFilter(input: FilterInput): { filter: RecordFilter; violations: FieldViolation[] } {
  const violations: FieldViolation[] = [];
  const filter: RecordFilter = {};
  if (input.projectId) filter.projectId = input.projectId;
  if (input.aggregateType) filter.aggregateType = input.aggregateType;
  if (input.aggregateId) filter.aggregateId = input.aggregateId;
  if (input.actorId) filter.actorId = input.actorId;
  if (input.correlationId) filter.correlationId = input.correlationId;
  if (input.eventId) filter.eventId = input.eventId;
  if (input.aggregateId && !input.aggregateType) {
    violations.push({ field: "aggregate_id", description: "aggregate_id requires aggregate_type" });
  }
  if (input.eventTypes.length > MAX_EVENT_TYPES) {
    violations.push({ field: "event_types", description: `at most ${MAX_EVENT_TYPES} event types` });
  }
  const types = input.eventTypes.filter((t) => t !== "");
  const full = types.filter((t) => t.includes("."));
  const short = types.filter((t) => !t.includes("."));
  if (full.length > 0) filter.eventTypes = full;
  if (short.length > 0) filter.eventNames = short;
  for (const [field, ts] of [
    ["start_time", input.startTime],
    ["end_time", input.endTime],
  ] as const) {
    if (ts !== undefined && !isValidTimestamp(ts)) {
      violations.push({ field, description: "must be between 0001-01-01 and 9999-12-31 with valid nanos" });
    }
  }
  if (input.startTime) filter.startTime = input.startTime;
  if (input.endTime) filter.endTime = input.endTime;
  if (input.startTime && input.endTime && compareTimestamps(input.endTime, input.startTime) < 0) {
    violations.push({ field: "end_time", description: "end_time is before start_time" });
  }
  return { filter, violations };
}
