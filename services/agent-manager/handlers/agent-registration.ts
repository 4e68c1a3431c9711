/**
 * RegisterAgent and DeregisterAgent: an agent's identity and session.
 *
 * Registration is authenticated by a registration API key ("authorization: Bearer <key>", one
 * of AGENT_MANAGER_REGISTRATION_KEYS) or by the gateway's signed principal (an agent, an
 * AGENT-role API key, or a mesh service). Registering a known name keeps the id, updates the
 * registration, and revokes the previous session (its stream is closed); a replay with the same
 * request_id within 24 h returns the same session.
 */
import { randomUUID, timingSafeEqual } from "node:crypto";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AgentState } from "../../../gen/codex/agentmanager/v1/agent_pb.js";
import type { AgentManagerService } from "../../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import {
  AgentDeregisteredSchema,
  AgentRegisteredSchema,
  AgentStateChangedSchema,
} from "../../../gen/codex/events/v1/agent_events_pb.js";
import { notFound, permissionDenied, unauthenticated } from "../../../mesh/errors.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { bearerOf } from "../connect/agent-auth.js";
import type { Core } from "../core.js";
import { pendingOf } from "../dispatch/dispatcher.js";
import { mayRegister } from "../domain/authz.js";
import { sessionToken } from "../domain/keys.js";
import { checkAgent, UUID } from "../domain/validation.js";
import { etagMismatch, wrongState } from "../errors.js";
import { envelope, originOf, selfOrigin } from "../events/origin.js";
import { type AgentRow, agentEtag, getAgent, getAgentByName, toAgent } from "../store/agents.js";
import { leasedRunsOf } from "../store/runs.js";
import { applyOne, inTx } from "../store/tx.js";
import { requireAdmin, throwIfProblems } from "./context.js";

type Impl = ServiceImpl<typeof AgentManagerService>;
const REPLAY_WINDOW_MS = 24 * 3_600_000;

function keyMatches(given: string | undefined, keys: readonly string[]): boolean {
  if (!given) return false;
  const g = Buffer.from(given);
  return keys.some((k) => {
    const b = Buffer.from(k);
    return b.length === g.length && timingSafeEqual(b, g);
  });
}

export function registrationHandlers(core: Core): Pick<Impl, "registerAgent" | "deregisterAgent"> {
  return {
    async registerAgent(req, ctx) {
      const byKey = keyMatches(bearerOf(ctx.metadata), core.settings.registrationKeys);
      if (!byKey) {
        if (!ctx.principal)
          throw unauthenticated("a registration API key or an agent credential is required");
        if (!mayRegister(ctx.principal))
          throw permissionDenied("only agents register agents", "AGENT_PRINCIPAL_REQUIRED");
      }
      const a = req.agent;
      throwIfProblems("invalid agent", checkAgent(a));
      if (!a) throw new Error("unreachable");
      const origin = ctx.principal
        ? originOf(ctx.principal, ctx.correlationId)
        : selfOrigin(ctx.correlationId);
      const result = await inTx(core.pool, core.subjects, async (tx) => {
        const existing = await getAgentByName(tx.client, a.name, true);
        const replay =
          existing !== undefined &&
          req.requestId !== "" &&
          existing.register_request_id === req.requestId &&
          (existing.register_request_at?.getTime() ?? 0) > tx.now.getTime() - REPLAY_WINDOW_MS;
        if (existing && replay) return { row: existing, reregistered: false, replay: true };
        const values = [
          JSON.stringify(a.labels),
          JSON.stringify(a.capabilities.map((c) => ({ name: c.name, versions: [...c.versions] }))),
          a.os,
          a.region,
          a.capacity,
          a.version,
          randomUUID(),
          new Date(tx.now.getTime() + core.settings.sessionTtlMs),
          req.requestId,
          tx.now,
        ];
        const { rows } = existing
          ? await tx.client.query<AgentRow>(
              `UPDATE agents SET labels = $2, capabilities = $3, os = $4, region = $5, capacity = $6, agent_version = $7,
                      session_id = $8, session_expire_at = $9, register_request_id = $10, register_request_at = $11,
                      updated_at = $11, version = version + 1
               WHERE id = $1 RETURNING *`,
              [existing.id, ...values],
            )
          : await tx.client.query<AgentRow>(
              `INSERT INTO agents (id, name, labels, capabilities, os, region, capacity, agent_version, state,
                                   session_id, session_expire_at, register_request_id, register_request_at,
                                   registered_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 3, $9, $10, $11, $12, $12, $12) RETURNING *`,
              [randomUUID(), a.name, ...values],
            );
        const row = rows[0] as AgentRow;
        tx.stage(
          envelope(
            AgentRegisteredSchema,
            { agent: toAgent(row, undefined, []), reregistered: existing !== undefined },
            { type: "agent", id: row.id, version: row.version },
            origin,
            tx.now,
          ),
        );
        return { row, reregistered: existing !== undefined, replay: false };
      });
      const { row } = result;
      if (result.reregistered)
        core.notifier.emit({ t: "revoked", agentId: row.id, sessionId: row.session_id });
      const [live] = await core.leases.liveness([row.id]);
      const running = (await leasedRunsOf(core.pool, row.id)).map((r) => r.id);
      return {
        agent: toAgent(row, live, running),
        sessionToken: sessionToken(core.keys, row.id, row.session_id),
        sessionExpireTime: timestampFromDate(row.session_expire_at),
        heartbeatInterval: durationFromMs(core.settings.heartbeatIntervalMs),
        leaseTtl: durationFromMs(core.settings.leaseTtlMs),
      };
    },

    async deregisterAgent(req, ctx) {
      const principal = requireAdmin(ctx, "DeregisterAgent");
      const origin = originOf(principal, ctx.correlationId);
      if (!UUID.test(req.agentId)) throw notFound("agent", req.agentId);
      const { released } = await inTx(core.pool, core.subjects, async (tx) => {
        const row = await getAgent(tx.client, req.agentId, true);
        if (!row) throw notFound("agent", req.agentId);
        if (req.etag !== "" && req.etag !== agentEtag(row)) throw etagMismatch(`agent ${row.id}`);
        const runs = await leasedRunsOf(tx.client, row.id);
        if (runs.length > 0 && !req.force) {
          throw wrongState(
            `agent ${row.name} holds ${runs.length} run(s); use force`,
            `agent/${row.id}`,
            "RUNS_IN_PROGRESS",
          );
        }
        const releasedRows = [];
        for (const run of runs) {
          const r = await applyOne(tx, core.endings.release, {
            runId: run.id,
            agentId: row.id,
            token: run.fencing_token,
            reason: "agent deregistered",
            origin,
          });
          if (r) releasedRows.push(r);
        }
        await tx.client.query("DELETE FROM agents WHERE id = $1", [row.id]);
        const agg = { type: "agent" as const, id: row.id, version: row.version + 1n };
        if (row.state !== AgentState.OFFLINE) {
          tx.stage(
            envelope(
              AgentStateChangedSchema,
              {
                agentId: row.id,
                previousState: row.state,
                newState: AgentState.OFFLINE,
                reason: "deregistered",
              },
              agg,
              origin,
              tx.now,
            ),
          );
        }
        tx.stage(
          envelope(
            AgentDeregisteredSchema,
            { agentId: row.id, name: row.name, releasedRunIds: releasedRows.map((r) => r.id) },
            agg,
            origin,
            tx.now,
          ),
        );
        return { released: releasedRows };
      });
      await core.leases.release(released.map((r) => r.id));
      await core.leases.forgetAgent(req.agentId);
      core.notifier.emit({ t: "revoked", agentId: req.agentId, sessionId: "" });
      for (const r of released) {
        core.notifier.emit({ t: "released", agentId: req.agentId, runId: r.id });
        core.notifier.emit({ t: "pending", run: pendingOf(r) });
      }
      return {};
    },
  };
}
