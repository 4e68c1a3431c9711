/**
 * The agents table: registration data, admin state (draining) and the last known liveness
 * state. Heartbeat times and metrics are not here (see liveness/lease-store.ts).
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { fromBinary } from "@bufbuild/protobuf";
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  AgentMetricsSchema,
  type AgentSchema,
  AgentState,
} from "../../../gen/codex/agentmanager/v1/agent_pb.js";
import type { AgentProfile } from "../domain/matching.js";
import type { Db } from "./runs.js";

export interface AgentRow {
  id: string;
  name: string;
  labels: Record<string, string>;
  capabilities: { name: string; versions: string[] }[];
  os: string;
  region: string;
  capacity: number;
  agent_version: string;
  state: AgentState;
  draining: boolean;
  state_reason: string;
  drain_deadline: Date | null;
  session_id: string;
  session_expire_at: Date;
  register_request_id: string;
  register_request_at: Date | null;
  registered_at: Date;
  updated_at: Date;
  version: bigint;
}

export function agentEtag(row: Pick<AgentRow, "version">): string {
  return `v${row.version}`;
}

export function profileOf(row: AgentRow): AgentProfile {
  return {
    id: row.id,
    labels: row.labels,
    os: row.os,
    region: row.region,
    tools: new Map(row.capabilities.map((c) => [c.name, c.versions])),
  };
}

/** Liveness of an agent from the lease store. */
export interface Liveness {
  lastMs: number | undefined;
  metrics: string | undefined;
}

export function toAgent(
  row: AgentRow,
  live: Liveness | undefined,
  running: readonly string[],
): MessageInitShape<typeof AgentSchema> {
  let metrics: MessageInitShape<typeof AgentSchema>["metrics"];
  if (live?.metrics) {
    try {
      metrics = fromBinary(AgentMetricsSchema, Buffer.from(live.metrics, "base64"));
    } catch {
      metrics = undefined;
    }
  }
  return {
    id: row.id,
    name: row.name,
    labels: row.labels,
    capabilities: row.capabilities,
    os: row.os,
    region: row.region,
    capacity: row.capacity,
    version: row.agent_version,
    state: row.state,
    runningRuns: running.length,
    runningRunIds: [...running],
    ...(live?.lastMs !== undefined ? { lastHeartbeatTime: timestampFromMs(live.lastMs) } : {}),
    ...(metrics ? { metrics } : {}),
    registerTime: timestampFromDate(row.registered_at),
    updateTime: timestampFromDate(row.updated_at),
    stateReason: row.state_reason,
    etag: agentEtag(row),
  };
}

export async function getAgent(db: Db, id: string, lock = false): Promise<AgentRow | undefined> {
  const { rows } = await db.query<AgentRow>(
    `SELECT * FROM agents WHERE id = $1 ${lock ? "FOR UPDATE" : ""}`,
    [id],
  );
  return rows[0];
}

export async function getAgentByName(db: Db, name: string, lock = false): Promise<AgentRow | undefined> {
  const { rows } = await db.query<AgentRow>(
    `SELECT * FROM agents WHERE name = $1 ${lock ? "FOR UPDATE" : ""}`,
    [name],
  );
  return rows[0];
}

/** Leased run ids per agent. */
export async function runningOf(db: Db, agentIds: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(agentIds.map((id) => [id, []]));
  if (agentIds.length === 0) return out;
  const { rows } = await db.query<{ agent_id: string; id: string }>(
    "SELECT agent_id, id FROM runs WHERE agent_id = ANY($1::text[]) AND state IN (2, 3) ORDER BY assigned_at",
    [agentIds],
  );
  for (const r of rows) out.get(r.agent_id)?.push(r.id);
  return out;
}

/** Filters of ListAgents that SQL applies (label selectors are applied after). */
export interface AgentFilter {
  states: number[];
  capability: string;
  region: string;
}

export async function listAgents(
  db: Db,
  f: AgentFilter,
  afterName: string | undefined,
  limit: number,
): Promise<AgentRow[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  if (f.states.length > 0) where.push(`state = ANY(${arg(f.states)}::smallint[])`);
  if (f.region !== "") where.push(`region = ${arg(f.region)}`);
  if (f.capability !== "")
    where.push(`capabilities @> ${arg(JSON.stringify([{ name: f.capability }]))}::jsonb`);
  if (afterName !== undefined) where.push(`name > ${arg(afterName)}`);
  const { rows } = await db.query<AgentRow>(
    `SELECT * FROM agents ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY name LIMIT ${arg(limit)}`,
    args,
  );
  return rows;
}

/** Agents Postgres believes are live (to rebuild the liveness store). */
export async function liveAgentIds(db: Db): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>("SELECT id FROM agents WHERE state <> $1", [
    AgentState.OFFLINE,
  ]);
  return rows.map((r) => r.id);
}
