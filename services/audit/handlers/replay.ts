import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type {
  ReplayAggregateRequest,
  ReplayAggregateResponseSchema,
} from "../../../gen/codex/audit/v1/audit_service_pb.js";
import { type FieldViolation, invalidArgument, notFound, permissionDenied } from "../../../mesh/errors.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import { canReadProject, isPlatformAdmin } from "../domain/authz.js";
import type { RecordFilter } from "../domain/filter.js";
import { foldPayload } from "../domain/replay.js";
import { isValidTimestamp } from "../domain/timestamps.js";
import { scanRecords } from "../store/query.js";
import { requirePrincipal } from "./auth.js";
import type { AuditDeps } from "./deps.js";

type Response = MessageInitShape<typeof ReplayAggregateResponseSchema>;

/**
 * ReplayAggregate: folds the aggregate's payloads in sequence order (domain/replay.ts), reading
 * them in batches. The caller compares the result with the owning service's state.
 *
 * Every folded record must be readable by the caller (an aggregate lives in one project, but
 * the check is per record, so a mis-published event cannot leak another project's data). A
 * caller who may not read it gets PERMISSION_DENIED whether or not the aggregate exists.
 */
export async function replayAggregate(
  deps: AuditDeps,
  req: ReplayAggregateRequest,
  ctx: CallContext,
): Promise<Response> {
  const principal = requirePrincipal(ctx);
  const violations: FieldViolation[] = [];
  if (req.aggregateType === "") violations.push({ field: "aggregate_type", description: "is required" });
  if (req.aggregateId === "") violations.push({ field: "aggregate_id", description: "is required" });
  if (req.asOfTime !== undefined && !isValidTimestamp(req.asOfTime)) {
    violations.push({ field: "as_of_time", description: "is not a valid timestamp" });
  }
  if (violations.length > 0) throw invalidArgument("invalid replay request", violations);
  const denied = () =>
    permissionDenied(
      `not allowed to read aggregate ${req.aggregateType}/${req.aggregateId}`,
      "ROLE_REQUIRED",
    );
  if (principal.type === "api_key") throw denied();

  const filter: RecordFilter = { aggregateType: req.aggregateType, aggregateId: req.aggregateId };
  if (req.upToSequence !== 0n) filter.maxSequence = req.upToSequence;
  if (req.asOfTime !== undefined) filter.endTime = req.asOfTime;

  let state: JsonObject = {};
  let count = 0n;
  let first: Timestamp | undefined;
  let last: Response = {};
  for await (const batch of scanRecords(deps.pool, filter, { batchSize: deps.batchSize })) {
    for (const r of batch) {
      if (!canReadProject(principal, r.projectId)) throw denied();
      state = foldPayload(state, r.payloadJson);
      count++;
      first ??= r.occurredAt;
      last = {
        lastSequence: r.sequence,
        aggregateVersion: r.aggregateVersion,
        lastEventType: r.eventType,
        ...(r.occurredAt ? { lastOccurredAt: r.occurredAt } : {}),
      };
    }
  }
  if (count === 0n) {
    if (!isPlatformAdmin(principal)) throw denied();
    throw notFound("Aggregate", `${req.aggregateType}/${req.aggregateId}`);
  }
  return {
    state,
    eventsCount: count,
    ...last,
    ...(first ? { firstOccurredAt: first } : {}),
  };
}
