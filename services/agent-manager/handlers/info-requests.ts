/**
 * GetInfoRequest, ListInfoRequests and AnswerInfoRequest. Reads never carry values; an answer
 * is sealed (AES-256-GCM) before it is stored, its event names the fields only, and the values
 * go to the agent holding the run, on its stream or with its next RenewLease.
 */
import type { AgentManagerService } from "../../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { InfoRequestState } from "../../../gen/codex/agentmanager/v1/info_request_pb.js";
import { invalidArgument, notFound } from "../../../mesh/errors.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import type { Core } from "../core.js";
import { mayAccessProject, readableProjects } from "../domain/authz.js";
import { sealAnswer } from "../domain/keys.js";
import { checkAnswer, UUID } from "../domain/validation.js";
import { answerIncomplete, etagMismatch, wrongState } from "../errors.js";
import { originOf } from "../events/origin.js";
import { isoOf } from "../store/convert.js";
import {
  getInfoRequest,
  type InfoRow,
  listInfoRequests,
  recordAnswer,
  toInfoRequest,
} from "../store/info-requests.js";
import { getRun } from "../store/runs.js";
import { inTx } from "../store/tx.js";
import { callerOf, checkAccess, runFor, throwIfProblems } from "./context.js";
import { listPageTokens } from "./paging.js";

type Impl = ServiceImpl<typeof AgentManagerService>;

export function infoRequestHandlers(
  core: Core,
): Pick<Impl, "getInfoRequest" | "listInfoRequests" | "answerInfoRequest"> {
  const readable = async (id: string, principal: ReturnType<typeof callerOf>): Promise<InfoRow> => {
    const row = UUID.test(id) ? await getInfoRequest(core.pool, id) : undefined;
    if (!row || !mayAccessProject(principal, row.project_id, "read")) throw notFound("info_request", id);
    return row;
  };
  return {
    async getInfoRequest(req, ctx) {
      const row = await readable(req.infoRequestId, callerOf(ctx));
      return { infoRequest: toInfoRequest(row) };
    },

    async listInfoRequests(req, ctx) {
      const principal = callerOf(ctx);
      if (req.projectId === "" && req.runId === "") {
        throw invalidArgument("project_id or run_id is required", [
          { field: "project_id", description: "or run_id is required" },
        ]);
      }
      if (req.runId !== "") await runFor(core, principal, req.runId, "read");
      if (req.projectId !== "") checkAccess(principal, req.projectId, "read");
      const pages = listPageTokens([req.projectId, req.runId, req.states], 2);
      const key = pages.keyOf(req.pageToken);
      const size = clampPageSize(req.pageSize, { default: 50, max: 500 });
      const scope = readableProjects(principal);
      const rows = await listInfoRequests(
        core.pool,
        {
          projectId: req.projectId,
          runId: req.runId,
          states: req.states,
          projects: scope === "all" ? undefined : scope,
        },
        key ? [key[0] as string, key[1] as string] : undefined,
        size,
      );
      const last = rows[rows.length - 1];
      return {
        infoRequests: rows.map(toInfoRequest),
        nextPageToken: rows.length === size && last ? pages.encode([isoOf(last.created_at), last.id]) : "",
      };
    },

    async answerInfoRequest(req, ctx) {
      const principal = callerOf(ctx);
      const current = await readable(req.infoRequestId, principal);
      checkAccess(principal, current.project_id, "maintain");
      const outcome = await inTx(core.pool, core.subjects, async (tx) => {
        const row = await getInfoRequest(tx.client, req.infoRequestId, true);
        if (!row) throw notFound("info_request", req.infoRequestId);
        if (req.etag !== "" && req.etag !== `v${row.version}`) throw etagMismatch(`info request ${row.id}`);
        if (
          row.state === InfoRequestState.ANSWERED &&
          req.requestId !== "" &&
          row.answer_request_id === req.requestId
        ) {
          return { row, replay: true };
        }
        if (row.state !== InfoRequestState.PENDING) {
          throw wrongState(
            `info request ${row.id} is ${InfoRequestState[row.state]}`,
            `info_request/${row.id}`,
            InfoRequestState[row.state] ?? "UNSPECIFIED",
          );
        }
        const check = checkAnswer(
          row.fields.map((f) => f.name),
          req.values,
        );
        if (check.incomplete) throw answerIncomplete(check.incomplete.field, check.incomplete.description);
        throwIfProblems("invalid answer", check.problems);
        const sealed = sealAnswer(core.keys, req.values, row.id);
        const answered = await recordAnswer(
          tx,
          row.id,
          sealed,
          principal.id,
          req.requestId,
          originOf(principal, ctx.correlationId),
        );
        if (!answered)
          throw wrongState(
            `info request ${row.id} is no longer PENDING`,
            `info_request/${row.id}`,
            "ANSWERED",
          );
        return { row: answered, replay: false };
      });
      if (!outcome.replay) {
        core.secrets.invalidate(outcome.row.run_id);
        const run = await getRun(core.pool, outcome.row.run_id);
        if (run)
          core.notifier.emit({
            t: "answer",
            agentId: run.agent_id,
            runId: run.id,
            infoRequestId: outcome.row.id,
          });
      }
      return { infoRequest: toInfoRequest(outcome.row) };
    },
  };
}
