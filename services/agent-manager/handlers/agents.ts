/** GetAgent, ListAgents, DrainAgent and UndrainAgent. */

import { AgentState } from "../../../gen/codex/agentmanager/v1/agent_pb.js";
import type { AgentManagerService } from "../../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { notFound } from "../../../mesh/errors.js";
import type { CallContext, ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import type { Core } from "../core.js";
import { mayReadAgent } from "../domain/authz.js";
import { labelsMatch, parseLabelSelector } from "../domain/matching.js";
import { checkReason, UUID } from "../domain/validation.js";
import { etagMismatch, wrongState } from "../errors.js";
import { originOf } from "../events/origin.js";
import { markDraining, markUndrained } from "../store/agent-changes.js";
import { type AgentRow, agentEtag, getAgent, listAgents, runningOf, toAgent } from "../store/agents.js";
import { msOf } from "../store/convert.js";
import { inTx } from "../store/tx.js";
import { callerOf, requireAdmin, throwIfProblems } from "./context.js";
import { listPageTokens } from "./paging.js";

type Impl = ServiceImpl<typeof AgentManagerService>;

async function views(core: Core, rows: readonly AgentRow[]) {
  const ids = rows.map((r) => r.id);
  const [live, running] = await Promise.all([core.leases.liveness(ids), runningOf(core.pool, ids)]);
  return rows.map((r, i) => toAgent(r, live[i], running.get(r.id) ?? []));
}

async function agentOr404(
  core: Core,
  agentId: string,
  lock = false,
  db: Parameters<typeof getAgent>[0] = core.pool,
) {
  const row = UUID.test(agentId) ? await getAgent(db, agentId, lock) : undefined;
  if (!row) throw notFound("agent", agentId);
  return row;
}

export function agentHandlers(
  core: Core,
): Pick<Impl, "getAgent" | "listAgents" | "drainAgent" | "undrainAgent"> {
  const stateName = (s: AgentState) => AgentState[s] ?? "UNSPECIFIED";
  return {
    async getAgent(req, ctx) {
      const principal = callerOf(ctx);
      if (!mayReadAgent(principal, req.agentId)) throw notFound("agent", req.agentId);
      const row = await agentOr404(core, req.agentId);
      const [agent] = await views(core, [row]);
      return { agent };
    },

    async listAgents(req, ctx: CallContext) {
      const principal = callerOf(ctx);
      const terms = req.labelSelector.map(parseLabelSelector);
      const pages = listPageTokens([req.states, req.labelSelector, req.capability, req.region], 1);
      const after = pages.keyOf(req.pageToken)?.[0];
      const size = clampPageSize(req.pageSize, { default: 100, max: 1000 });
      const rows = await listAgents(
        core.pool,
        { states: req.states, capability: req.capability, region: req.region },
        after,
        size,
      );
      const visible = rows.filter((r) => labelsMatch(r.labels, terms) && mayReadAgent(principal, r.id));
      const last = rows[rows.length - 1];
      return {
        agents: await views(core, visible),
        nextPageToken: rows.length === size && last ? pages.encode([last.name]) : "",
      };
    },

    async drainAgent(req, ctx) {
      const principal = requireAdmin(ctx, "DrainAgent");
      throwIfProblems("invalid drain", checkReason(req.reason));
      const deadline = req.deadline ? new Date(Date.now() + msOf(req.deadline)) : null;
      const { row, changed } = await inTx(core.pool, core.subjects, async (tx) => {
        const current = await agentOr404(core, req.agentId, true, tx.client);
        if (req.etag !== "" && req.etag !== agentEtag(current)) throw etagMismatch(`agent ${current.id}`);
        if (current.state === AgentState.OFFLINE) {
          throw wrongState(
            `agent ${current.name} is OFFLINE`,
            `agent/${current.id}`,
            stateName(current.state),
          );
        }
        if (current.state === AgentState.DRAINING) return { row: current, changed: false };
        const drained = await markDraining(
          tx,
          current.id,
          req.reason,
          deadline,
          originOf(principal, ctx.correlationId),
        );
        return { row: drained ?? current, changed: drained !== undefined };
      });
      if (changed) {
        core.notifier.emit({
          t: "drain",
          agentId: row.id,
          draining: true,
          reason: req.reason,
          deadlineMs: deadline?.getTime() ?? null,
        });
      }
      const [agent] = await views(core, [row]);
      return { agent };
    },

    async undrainAgent(req, ctx) {
      const principal = requireAdmin(ctx, "UndrainAgent");
      const row = await inTx(core.pool, core.subjects, async (tx) => {
        const current = await agentOr404(core, req.agentId, true, tx.client);
        if (req.etag !== "" && req.etag !== agentEtag(current)) throw etagMismatch(`agent ${current.id}`);
        if (current.state !== AgentState.DRAINING) {
          throw wrongState(
            `agent ${current.name} is not DRAINING`,
            `agent/${current.id}`,
            stateName(current.state),
          );
        }
        return (await markUndrained(tx, current.id, originOf(principal, ctx.correlationId))) ?? current;
      });
      core.notifier.emit({ t: "drain", agentId: row.id, draining: false, reason: "", deadlineMs: null });
      const [agent] = await views(core, [row]);
      return { agent };
    },
  };
}
