import type { MessageInitShape } from "@bufbuild/protobuf";
import type {
  GetAuditRecordRequest,
  GetAuditRecordResponseSchema,
  QueryAuditRecordsRequest,
  QueryAuditRecordsResponseSchema,
} from "../../../gen/codex/audit/v1/audit_record_pb.js";
import { invalidArgument, notFound, permissionDenied } from "../../../mesh/errors.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import { canReadProject, isPlatformAdmin } from "../domain/authz.js";
import { parseFilter } from "../domain/filter.js";
import { findRecords, getRecord } from "../store/query.js";
import { requirePrincipal, requireProjectReader } from "./auth.js";
import type { AuditDeps } from "./deps.js";
import { queryPageTokens } from "./paging.js";

const PAGE_SIZES = { default: 100, max: 1_000 };

/** QueryAuditRecords: filtered, keyset-paginated reads. */
export async function queryAuditRecords(
  deps: AuditDeps,
  req: QueryAuditRecordsRequest,
  ctx: CallContext,
): Promise<MessageInitShape<typeof QueryAuditRecordsResponseSchema>> {
  const principal = requirePrincipal(ctx);
  const { filter, violations } = parseFilter(req);
  if (req.pageSize < 0) violations.push({ field: "page_size", description: "must not be negative" });
  if (violations.length > 0) throw invalidArgument("invalid audit record query", violations);
  requireProjectReader(principal, req.projectId);

  const pageSize = clampPageSize(req.pageSize, PAGE_SIZES);
  const pages = queryPageTokens(filter, req.newestFirst);
  const after = pages.afterOf(req.pageToken);
  const rows = await findRecords(deps.pool, filter, {
    after,
    limit: pageSize + 1,
    newestFirst: req.newestFirst,
  });
  const page = rows.slice(0, pageSize);
  const last = page[page.length - 1];
  const nextPageToken = rows.length > pageSize && last ? pages.encode(last.sequence) : "";
  return { auditRecords: page, nextPageToken };
}

/**
 * GetAuditRecord. A caller who may not read the record's project gets PERMISSION_DENIED whether
 * or not the sequence exists, so sequence numbers do not reveal other projects' activity.
 */
export async function getAuditRecord(
  deps: AuditDeps,
  req: GetAuditRecordRequest,
  ctx: CallContext,
): Promise<MessageInitShape<typeof GetAuditRecordResponseSchema>> {
  const principal = requirePrincipal(ctx);
  if (req.sequence === 0n) {
    throw invalidArgument("sequence is required", [{ field: "sequence", description: "must be at least 1" }]);
  }
  const record = await getRecord(deps.pool, req.sequence);
  if (isPlatformAdmin(principal)) {
    if (record === undefined) throw notFound("AuditRecord", req.sequence.toString());
    return { auditRecord: record };
  }
  if (record === undefined || !canReadProject(principal, record.projectId)) {
    throw permissionDenied(`not allowed to read audit record ${req.sequence}`, "ROLE_REQUIRED");
  }
  return { auditRecord: record };
}
