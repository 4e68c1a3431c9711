/**
 * Agent state changes (connected, lost, drained, undrained), each with its events, inside the
 * caller's transaction. State changes are rare (a connect, a drain), so they are written to
 * Postgres; heartbeats never are.
 */
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AgentState } from "../../../gen/codex/agentmanager/v1/agent_pb.js";
import { AgentLostSchema, AgentStateChangedSchema } from "../../../gen/codex/events/v1/agent_events_pb.js";
import { envelope, type Origin } from "../events/origin.js";
import type { AgentRow } from "./agents.js";
import type { BatchContext } from "./group-commit.js";

type Changed = AgentRow & { prev_state: AgentState };

function stateChanged(ctx: BatchContext, row: Changed, reason: string, origin: Origin): void {
  ctx.stage(
    envelope(
      AgentStateChangedSchema,
      { agentId: row.id, previousState: row.prev_state, newState: row.state, reason },
      { type: "agent", id: row.id, version: row.version },
      origin,
      ctx.now,
    ),
  );
}

async function change(ctx: BatchContext, sql: string, args: unknown[]): Promise<Changed | undefined> {
  const { rows } = await ctx.client.query<Changed>(
    `WITH old AS (SELECT id, state FROM agents WHERE id = $1 FOR UPDATE)
     ${sql}
     RETURNING agents.*, old.state AS prev_state`,
    args,
  );
  return rows[0];
}

/** OFFLINE -> ONLINE (or DRAINING if drained): the agent connected or heartbeats again. */
export async function markConnected(
  ctx: BatchContext,
  agentId: string,
  origin: Origin,
): Promise<AgentRow | undefined> {
  const row = await change(
    ctx,
    `UPDATE agents SET state = CASE WHEN agents.draining THEN 2 ELSE 1 END,
            state_reason = CASE WHEN agents.draining THEN agents.state_reason ELSE '' END,
            updated_at = $2, version = agents.version + 1
     FROM old WHERE agents.id = old.id AND agents.state = 3`,
    [agentId, ctx.now],
  );
  if (row) stateChanged(ctx, row, "connected", origin);
  return row;
}

/** -> OFFLINE after missed heartbeats: AgentStateChanged and AgentLost with the runs it held. */
export async function markLost(
  ctx: BatchContext,
  agentId: string,
  lastBeatMs: number,
  reason: string,
  origin: Origin,
): Promise<AgentRow | undefined> {
  const row = await change(
    ctx,
    `UPDATE agents SET state = 3, state_reason = $3, updated_at = $2, version = agents.version + 1
     FROM old WHERE agents.id = old.id AND agents.state <> 3`,
    [agentId, ctx.now, reason],
  );
  if (!row) return undefined;
  stateChanged(ctx, row, reason, origin);
  const { rows } = await ctx.client.query<{ id: string }>(
    "SELECT id FROM runs WHERE agent_id = $1 AND state IN (2, 3) ORDER BY assigned_at",
    [agentId],
  );
  ctx.stage(
    envelope(
      AgentLostSchema,
      { agentId, lastHeartbeatTime: timestampFromMs(lastBeatMs), runIds: rows.map((r) => r.id) },
      { type: "agent", id: agentId, version: row.version },
      origin,
      ctx.now,
    ),
  );
  return row;
}

/** ONLINE -> DRAINING (a DRAINING agent gets the new reason and deadline, no event). */
export async function markDraining(
  ctx: BatchContext,
  agentId: string,
  reason: string,
  deadline: Date | null,
  origin: Origin,
): Promise<AgentRow | undefined> {
  const row = await change(
    ctx,
    `UPDATE agents SET state = 2, draining = true, state_reason = $3, drain_deadline = $4, updated_at = $2,
            version = agents.version + CASE WHEN agents.state = 2 THEN 0 ELSE 1 END
     FROM old WHERE agents.id = old.id AND agents.state <> 3`,
    [agentId, ctx.now, reason, deadline],
  );
  if (row && row.prev_state !== AgentState.DRAINING) stateChanged(ctx, row, reason, origin);
  return row;
}

/** DRAINING -> ONLINE. */
export async function markUndrained(
  ctx: BatchContext,
  agentId: string,
  origin: Origin,
): Promise<AgentRow | undefined> {
  const row = await change(
    ctx,
    `UPDATE agents SET state = 1, draining = false, state_reason = '', drain_deadline = NULL, updated_at = $2,
            version = agents.version + 1
     FROM old WHERE agents.id = old.id AND agents.state = 2`,
    [agentId, ctx.now],
  );
  if (row) stateChanged(ctx, row, "undrained", origin);
  return row;
}
