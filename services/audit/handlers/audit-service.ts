import type { AuditService } from "../../../gen/codex/audit/v1/audit_service_pb.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import type { AuditDeps } from "./deps.js";
import { exportAuditRecords } from "./export.js";
import { getAuditRecord, queryAuditRecords } from "./query.js";
import { replayAggregate } from "./replay.js";
import { verifyChain } from "./verify.js";

/** The AuditService implementation: read-only; records are written only by the consumer. */
export function auditServiceImpl(deps: AuditDeps): ServiceImpl<typeof AuditService> {
  return {
    queryAuditRecords: (req, ctx) => queryAuditRecords(deps, req, ctx),
    getAuditRecord: (req, ctx) => getAuditRecord(deps, req, ctx),
    verifyChain: (req, ctx) => verifyChain(deps, req, ctx),
    replayAggregate: (req, ctx) => replayAggregate(deps, req, ctx),
    exportAuditRecords: (req, ctx) => exportAuditRecords(deps, req, ctx),
  };
}
