import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { ArtifactStoredSchema } from "../../../gen/codex/events/v1/workitem_events_pb.js";
import {
  GetArtifactResponseSchema,
  ListArtifactsResponseSchema,
  UploadArtifactResponseSchema,
} from "../../../gen/codex/workitem/v1/artifact_pb.js";
import type { WorkItemService } from "../../../gen/codex/workitem/v1/workitem_service_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import { pageTokens } from "../../../mesh/pagination/page-token.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import type { Deps } from "../app/deps.js";
import { checkHeader, readHeader, receiveContent } from "../app/upload.js";
import { actorId, authorize, callerOf, readableProjects } from "../authz.js";
import { artifactToProto } from "../convert.js";
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  notFound,
  outOfRange,
  permissionDenied,
  Violations,
  wrongState,
} from "../errors.js";
import {
  type ArtifactRow,
  findArtifact,
  getArtifact,
  insertArtifact,
  listArtifacts,
} from "../store/artifacts.js";
import type { Db } from "../store/db.js";
import { itemFor, requireId } from "./access.js";

type Impl = ServiceImpl<typeof WorkItemService>;

async function artifactFor(db: Db, caller: Principal, id: string): Promise<ArtifactRow> {
  const row = await getArtifact(db, id);
  if (!row) throw notFound("artifact", id);
  authorize(caller, row.projectId, "read", { type: "artifact", name: id });
  return row;
}

/**
 * An upload for a run comes from the agent holding the run's current lease, for the run's own
 * work item; checked before any content is read, so a stale agent streams nothing.
 */
async function checkRunLease(
  deps: Deps,
  caller: Principal,
  workItemId: string,
  runId: string,
  token: bigint,
) {
  if (caller.type !== "agent") {
    throw permissionDenied(
      `only the agent holding run ${runId} may upload its artifacts`,
      "PERMISSION_DENIED",
      {
        run_id: runId,
      },
    );
  }
  const lease = await deps.leases.check(runId, caller.id, token);
  if (!lease.held) {
    throw failedPrecondition(
      "STALE_LEASE",
      `runs/${runId}`,
      `the lease on run ${runId} is not held with this fencing token (${lease.why}): drop this run's results`,
      { run_id: runId, current_state: lease.state },
    );
  }
  if (lease.workItemId !== workItemId) {
    throw invalidArgument("the run belongs to another work item", [
      { field: "header.work_item_id", description: `run ${runId} belongs to work item ${lease.workItemId}` },
    ]);
  }
}

/** Artifacts: streamed upload with verification, streamed download, metadata and lists. */
export function artifactHandlers(
  deps: Deps,
): Pick<Impl, "uploadArtifact" | "downloadArtifact" | "getArtifact" | "listArtifacts"> {
  return {
    async uploadArtifact(reqs, ctx) {
      const caller = callerOf(ctx);
      const it = reqs[Symbol.asyncIterator]();
      const h = await readHeader(it);
      const id = requireId(h.workItemId, "header.work_item_id");
      checkHeader(h, deps.limits.artifactMaxBytes);
      const item = await itemFor(deps.pool, caller, id, "upload");
      if (item.state === "CANCELLED")
        throw wrongState(`work_items/${id}`, item.state, "work item is CANCELLED");
      if (h.runId !== "") await checkRunLease(deps, caller, id, h.runId, h.fencingToken);
      const existing = await findArtifact(deps.pool, id, h.runId, h.name);
      if (existing) {
        if (existing.sha256 !== h.expectedSha256)
          throw alreadyExists("artifact", h.name, "exists with other content");
        if (BigInt(existing.sizeBytes) !== h.expectedSize) {
          throw invalidArgument(
            "expected_size does not match the stored content with this sha256",
            [{ field: "header.expected_size", description: `the content is ${existing.sizeBytes} bytes` }],
            "SIZE_MISMATCH",
          );
        }
        await it.return?.();
        return create(UploadArtifactResponseSchema, { artifact: artifactToProto(existing) });
      }
      const objectName = await receiveContent(deps, it, h, ctx.signal);
      return withTransaction(deps.pool, async (tx) => {
        // The foreign key's row lock serializes this insert with a concurrent DeleteWorkItem.
        const at = deps.now();
        const { row, inserted } = await insertArtifact(tx, {
          id: randomUUID(),
          workItemId: id,
          projectId: item.projectId,
          runId: h.runId,
          name: h.name,
          contentType: h.contentType || "application/octet-stream",
          sizeBytes: Number(h.expectedSize),
          sha256: h.expectedSha256,
          objectName,
          createdBy: actorId(caller),
          createTime: at,
        });
        if (!inserted) {
          if (row.sha256 !== h.expectedSha256)
            throw alreadyExists("artifact", h.name, "exists with other content");
          return create(UploadArtifactResponseSchema, { artifact: artifactToProto(row) });
        }
        const artifact = artifactToProto(row);
        await deps.events.stage(tx, caller, {
          schema: ArtifactStoredSchema,
          payload: create(ArtifactStoredSchema, { artifact }),
          aggregateType: "artifact",
          aggregateId: row.id,
          aggregateVersion: 1,
          projectId: row.projectId,
          at,
        });
        return create(UploadArtifactResponseSchema, { artifact });
      });
    },

    async *downloadArtifact(req, ctx) {
      const caller = callerOf(ctx);
      const row = await artifactFor(deps.pool, caller, requireId(req.artifactId, "artifact_id"));
      const offset = Number(req.offset);
      if (offset < 0) throw outOfRange("offset must not be negative", "offset");
      if (offset > row.sizeBytes)
        throw outOfRange(`offset ${offset} is beyond the content (${row.sizeBytes} bytes)`, "offset");
      yield { artifact: artifactToProto(row), data: new Uint8Array(0), offset: BigInt(offset) };
      try {
        for await (const chunk of deps.blobs().read(row.objectName, offset, row.sha256)) {
          if (ctx.signal.aborted) return;
          yield { data: chunk.data, offset: BigInt(chunk.offset) };
        }
      } catch (err) {
        deps.logger.error({ err, artifact: row.id }, "artifact content unreadable");
        throw new ServiceError(
          Code.DATA_LOSS,
          `content of artifact ${row.id} is unavailable or corrupt`,
          [],
          { cause: err },
        );
      }
    },

    async getArtifact(req, ctx) {
      const caller = callerOf(ctx);
      const row = await artifactFor(deps.pool, caller, requireId(req.artifactId, "artifact_id"));
      return create(GetArtifactResponseSchema, { artifact: artifactToProto(row) });
    },

    async listArtifacts(req, ctx) {
      const caller = callerOf(ctx);
      const v = new Violations();
      if (req.workItemId === "" && req.runId === "")
        v.add("work_item_id", "work_item_id or run_id is required");
      const pages = pageTokens({ w: req.workItemId, r: req.runId });
      const c = pages.cursorOf(req.pageToken, v, { arity: 3 });
      v.throwIfAny();
      let projectIds: string[] | undefined;
      if (req.workItemId !== "") {
        const item = await itemFor(deps.pool, caller, requireId(req.workItemId, "work_item_id"), "read");
        projectIds = [item.projectId];
      } else {
        projectIds = readableProjects(caller);
      }
      const limit = clampPageSize(req.pageSize, { default: 100, max: 1000 });
      const rows = await listArtifacts(deps.pool, {
        workItemId: req.workItemId.toLowerCase(),
        runId: req.runId,
        projectIds,
        ...(c ? { after: { createTime: new Date(Number(c[0])), name: String(c[1]), id: String(c[2]) } } : {}),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return create(ListArtifactsResponseSchema, {
        artifacts: page.map(artifactToProto),
        nextPageToken:
          rows.length > limit && last ? pages.encode([last.createTime.getTime(), last.name, last.id]) : "",
      });
    },
  };
}
