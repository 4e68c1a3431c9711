import { outboxMigrationSql } from "../../../mesh/outbox/schema.js";
import type { Migration } from "../../../mesh/postgres/migrations.js";

/**
 * The agent_manager schema. Postgres holds what must survive anything: agents' registrations
 * and admin state, runs with their fencing tokens, logs and info requests. Liveness (heartbeat
 * times, metrics) and the live lease expiries are in Redis and rebuilt from here when Redis is
 * lost: `runs.lease_expire_at` is the expiry granted at claim, never touched by heartbeats.
 *
 * Run states are RunState numbers (2 ASSIGNED, 3 RUNNING are the leased ones); agent states
 * are AgentState numbers.
 */
const core = `
CREATE TABLE agents (
  id uuid PRIMARY KEY,
  name text NOT NULL UNIQUE,
  labels jsonb NOT NULL DEFAULT '{}'::jsonb,
  capabilities jsonb NOT NULL DEFAULT '[]'::jsonb,
  os text NOT NULL DEFAULT '',
  region text NOT NULL DEFAULT '',
  capacity integer NOT NULL,
  agent_version text NOT NULL DEFAULT '',
  state smallint NOT NULL,
  draining boolean NOT NULL DEFAULT false,
  state_reason text NOT NULL DEFAULT '',
  drain_deadline timestamptz NULL,
  session_id uuid NOT NULL,
  session_expire_at timestamptz NOT NULL,
  register_request_id text NOT NULL DEFAULT '',
  register_request_at timestamptz NULL,
  registered_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  version bigint NOT NULL DEFAULT 1
);
CREATE INDEX agents_draining_deadline_idx ON agents (drain_deadline) WHERE draining AND drain_deadline IS NOT NULL;

CREATE TABLE runs (
  id uuid PRIMARY KEY,
  task_id text NOT NULL,
  attempt integer NOT NULL,
  work_item_id text NOT NULL,
  project_id text NOT NULL,
  request_id text NOT NULL DEFAULT '',
  priority integer NOT NULL DEFAULT 0,
  agent_selector jsonb NOT NULL DEFAULT '{}'::jsonb,
  required_tools jsonb NOT NULL DEFAULT '[]'::jsonb,
  work_item bytea NOT NULL,
  state smallint NOT NULL,
  agent_id text NOT NULL DEFAULT '',
  fencing_token bigint NOT NULL DEFAULT 0,
  lease_expire_at timestamptz NULL,
  lease_expiries integer NOT NULL DEFAULT 0,
  rejected_by text[] NOT NULL DEFAULT '{}',
  current_step integer NOT NULL DEFAULT 0,
  exit_code integer NULL,
  error text NOT NULL DEFAULT '',
  cancel_requested boolean NOT NULL DEFAULT false,
  cancel_reason text NOT NULL DEFAULT '',
  cancel_requested_at timestamptz NULL,
  trace_id text NOT NULL,
  created_at timestamptz NOT NULL,
  assigned_at timestamptz NULL,
  started_at timestamptz NULL,
  finished_at timestamptz NULL,
  version bigint NOT NULL DEFAULT 1,
  UNIQUE (task_id, attempt)
);
CREATE INDEX runs_pending_idx ON runs (priority DESC, created_at) WHERE state = 1;
CREATE INDEX runs_leased_idx ON runs (agent_id) WHERE state IN (2, 3);
CREATE INDEX runs_cancel_idx ON runs (cancel_requested_at) WHERE cancel_requested AND state IN (2, 3);
CREATE INDEX runs_project_idx ON runs (project_id, created_at DESC, id DESC);
CREATE INDEX runs_created_idx ON runs (created_at DESC, id DESC);
CREATE INDEX runs_work_item_idx ON runs (work_item_id, created_at DESC);
CREATE INDEX runs_task_idx ON runs (task_id);
CREATE INDEX runs_agent_idx ON runs (agent_id, created_at DESC) WHERE agent_id <> '';

CREATE TABLE run_logs (
  run_id uuid NOT NULL,
  off bigint NOT NULL,
  stream smallint NOT NULL,
  step integer NULL,
  text text NOT NULL,
  time timestamptz NOT NULL,
  PRIMARY KEY (run_id, off)
);

CREATE TABLE log_cursors (
  run_id uuid PRIMARY KEY,
  last_seq bigint NOT NULL,
  next_offset bigint NOT NULL,
  partials jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE info_requests (
  id uuid PRIMARY KEY,
  run_id uuid NOT NULL,
  work_item_id text NOT NULL,
  project_id text NOT NULL,
  agent_id text NOT NULL,
  request_id text NOT NULL,
  reason text NOT NULL DEFAULT '',
  fields jsonb NOT NULL,
  state smallint NOT NULL,
  answered_by text NOT NULL DEFAULT '',
  answer_time timestamptz NULL,
  answer_sealed bytea NULL,
  answer_request_id text NOT NULL DEFAULT '',
  delivered_at timestamptz NULL,
  created_at timestamptz NOT NULL,
  version bigint NOT NULL DEFAULT 1,
  UNIQUE (run_id, request_id)
);
CREATE INDEX info_requests_project_idx ON info_requests (project_id, created_at DESC, id DESC);
CREATE INDEX info_requests_open_idx ON info_requests (run_id) WHERE state = 1 OR answer_sealed IS NOT NULL;
`;

export const migrations: Migration[] = [
  { version: 1, name: "agents, runs, logs, info requests", sql: core },
  { version: 2, name: "outbox", sql: outboxMigrationSql() },
];
