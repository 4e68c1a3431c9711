import { DEFAULT_RISK_RULES, type RiskRules } from "../domain/risk.js";
import { type Db, num } from "./db.js";

/** A project's approval policy; `stored` is false for the defaults. */
export interface PolicyRow {
  projectId: string;
  requiredApprovals: number;
  ttlMs: number;
  approverRoles: string[];
  updatedBy: string;
  updateTime: Date | null;
  version: number;
  stored: boolean;
}

export const DEFAULT_TTL_MS = 72 * 60 * 60 * 1000;

export function defaultPolicy(projectId: string): PolicyRow {
  return {
    projectId,
    requiredApprovals: 1,
    ttlMs: DEFAULT_TTL_MS,
    approverRoles: [],
    updatedBy: "",
    updateTime: null,
    version: 0,
    stored: false,
  };
}

export async function getPolicy(db: Db, projectId: string): Promise<PolicyRow> {
  const { rows } = await db.query(
    `SELECT project_id, required_approvals, ttl_ms, approver_roles, updated_by, update_time, version
       FROM approval_policies WHERE project_id = $1`,
    [projectId],
  );
  const r = rows[0];
  if (!r) return defaultPolicy(projectId);
  return {
    projectId,
    requiredApprovals: num(r.required_approvals),
    ttlMs: num(r.ttl_ms),
    approverRoles: r.approver_roles,
    updatedBy: r.updated_by,
    updateTime: r.update_time,
    version: num(r.version),
    stored: true,
  };
}

/** Inserts or replaces; returns the new version. */
export async function putPolicy(db: Db, p: PolicyRow): Promise<number> {
  const { rows } = await db.query<{ version: number }>(
    `INSERT INTO approval_policies (project_id, required_approvals, ttl_ms, approver_roles, updated_by, update_time)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (project_id) DO UPDATE SET required_approvals = $2, ttl_ms = $3, approver_roles = $4,
       updated_by = $5, update_time = $6, version = approval_policies.version + 1
     RETURNING version`,
    [p.projectId, p.requiredApprovals, p.ttlMs, p.approverRoles, p.updatedBy, p.updateTime],
  );
  return num(rows[0]?.version);
}

/** A project's risk rules; `stored` is false for the defaults. */
export interface RiskRulesRow {
  projectId: string;
  rules: RiskRules;
  updatedBy: string;
  updateTime: Date | null;
  version: number;
  stored: boolean;
}

export async function getRiskRules(db: Db, projectId: string): Promise<RiskRulesRow> {
  const { rows } = await db.query(
    `SELECT kinds, environments, network_tools, label_selectors, updated_by, update_time, version
       FROM risk_rules WHERE project_id = $1`,
    [projectId],
  );
  const r = rows[0];
  if (!r)
    return {
      projectId,
      rules: DEFAULT_RISK_RULES,
      updatedBy: "",
      updateTime: null,
      version: 0,
      stored: false,
    };
  return {
    projectId,
    rules: {
      kinds: r.kinds,
      environments: r.environments,
      networkTools: r.network_tools,
      labelSelectors: r.label_selectors,
    },
    updatedBy: r.updated_by,
    updateTime: r.update_time,
    version: num(r.version),
    stored: true,
  };
}

/** Inserts or replaces; returns the new version. */
export async function putRiskRules(db: Db, r: RiskRulesRow): Promise<number> {
  const { rows } = await db.query<{ version: number }>(
    `INSERT INTO risk_rules (project_id, kinds, environments, network_tools, label_selectors, updated_by, update_time)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (project_id) DO UPDATE SET kinds = $2, environments = $3, network_tools = $4,
       label_selectors = $5, updated_by = $6, update_time = $7, version = risk_rules.version + 1
     RETURNING version`,
    [
      r.projectId,
      [...r.rules.kinds],
      [...r.rules.environments],
      r.rules.networkTools,
      JSON.stringify(r.rules.labelSelectors),
      r.updatedBy,
      r.updateTime,
    ],
  );
  return num(rows[0]?.version);
}

/**
 * Serializes policy/rules changes of one project with the work that reads them (creating
 * items, opening requests), so a rules change and a concurrent create cannot miss each other.
 */
export async function lockProject(db: Db, projectId: string): Promise<void> {
  await db.query("SELECT pg_advisory_xact_lock(hashtext('workitem.project'), hashtext($1))", [projectId]);
}

/** The shared side of {@link lockProject}: creates run concurrently, never during a rules change. */
export async function lockProjectShared(db: Db, projectId: string): Promise<void> {
  await db.query("SELECT pg_advisory_xact_lock_shared(hashtext('workitem.project'), hashtext($1))", [
    projectId,
  ]);
}
