import { outboxMigrationSql } from "../../../mesh/outbox/schema.js";
import type { Migration } from "../../../mesh/postgres/migrations.js";

/**
 * The workitem schema. Forward-only: released migrations are checksummed by the runner, so
 * change the schema by appending, never by editing.
 *
 * Times are written by the service (millisecond precision, one clock for "now" and for
 * expiry checks) rather than by `now()`, so keyset page tokens round-trip exactly.
 */
const core = `
CREATE TABLE work_items (
  id uuid PRIMARY KEY,
  project_id text NOT NULL,
  title text NOT NULL,
  description text NOT NULL DEFAULT '',
  kind text NOT NULL,
  labels jsonb NOT NULL DEFAULT '{}'::jsonb,
  state text NOT NULL,
  state_reason text NOT NULL DEFAULT '',
  blocked_from text NULL,
  environment text NOT NULL DEFAULT '',
  recipe_version int NOT NULL DEFAULT 0,
  risky boolean NOT NULL DEFAULT false,
  risk_reasons jsonb NOT NULL DEFAULT '[]'::jsonb,
  approval_status text NOT NULL,
  approval_request_id uuid NULL,
  review_required boolean NOT NULL DEFAULT false,
  task_id text NOT NULL DEFAULT '',
  created_by text NOT NULL,
  create_time timestamptz NOT NULL,
  update_time timestamptz NOT NULL,
  state_change_time timestamptz NOT NULL,
  version int NOT NULL DEFAULT 1
);
CREATE INDEX work_items_project_page_idx ON work_items (project_id, create_time DESC, id DESC);
CREATE INDEX work_items_page_idx ON work_items (create_time DESC, id DESC);
CREATE INDEX work_items_labels_idx ON work_items USING gin (labels jsonb_path_ops);

CREATE TABLE recipes (
  work_item_id uuid NOT NULL REFERENCES work_items (id) ON DELETE CASCADE,
  version int NOT NULL,
  sha256 text NOT NULL,
  source_yaml text NOT NULL,
  parsed jsonb NOT NULL,
  created_by text NOT NULL,
  create_time timestamptz NOT NULL,
  PRIMARY KEY (work_item_id, version)
);

CREATE TABLE approval_requests (
  id uuid PRIMARY KEY,
  work_item_id uuid NOT NULL REFERENCES work_items (id) ON DELETE CASCADE,
  project_id text NOT NULL,
  recipe_version int NOT NULL,
  requested_by text NOT NULL,
  on_behalf_of text NOT NULL,
  reason text NOT NULL,
  state text NOT NULL,
  required_approvals int NOT NULL,
  approver_roles text[] NOT NULL,
  create_time timestamptz NOT NULL,
  expire_time timestamptz NOT NULL,
  resolve_time timestamptz NULL,
  version int NOT NULL DEFAULT 1
);
-- At most one open request per item: a second concurrent opener fails instead of forking.
CREATE UNIQUE INDEX approval_requests_one_pending_idx ON approval_requests (work_item_id) WHERE state = 'PENDING';
CREATE INDEX approval_requests_project_idx ON approval_requests (project_id, create_time DESC, id DESC);
CREATE INDEX approval_requests_item_idx ON approval_requests (work_item_id, create_time DESC, id DESC);
CREATE INDEX approval_requests_expiry_idx ON approval_requests (expire_time) WHERE state = 'PENDING';

-- One row per approver and request: a decision can never be recorded twice.
CREATE TABLE approval_decisions (
  approval_request_id uuid NOT NULL REFERENCES approval_requests (id) ON DELETE CASCADE,
  approver text NOT NULL,
  decision text NOT NULL,
  reason text NOT NULL,
  decide_time timestamptz NOT NULL,
  PRIMARY KEY (approval_request_id, approver)
);

CREATE TABLE approval_policies (
  project_id text PRIMARY KEY,
  required_approvals int NOT NULL,
  ttl_ms bigint NOT NULL,
  approver_roles text[] NOT NULL,
  updated_by text NOT NULL,
  update_time timestamptz NOT NULL,
  version int NOT NULL DEFAULT 1
);

CREATE TABLE risk_rules (
  project_id text PRIMARY KEY,
  kinds text[] NOT NULL,
  environments text[] NOT NULL,
  network_tools boolean NOT NULL,
  label_selectors jsonb NOT NULL,
  updated_by text NOT NULL,
  update_time timestamptz NOT NULL,
  version int NOT NULL DEFAULT 1
);

CREATE TABLE artifacts (
  id uuid PRIMARY KEY,
  work_item_id uuid NOT NULL REFERENCES work_items (id),
  project_id text NOT NULL,
  run_id text NOT NULL DEFAULT '',
  name text NOT NULL,
  content_type text NOT NULL,
  size_bytes bigint NOT NULL,
  sha256 text NOT NULL,
  object_name text NOT NULL,
  created_by text NOT NULL,
  create_time timestamptz NOT NULL,
  UNIQUE (work_item_id, run_id, name)
);
CREATE INDEX artifacts_item_page_idx ON artifacts (work_item_id, create_time, name, id);
CREATE INDEX artifacts_run_page_idx ON artifacts (run_id, create_time, name, id) WHERE run_id <> '';

CREATE TABLE idempotency_keys (
  principal text NOT NULL,
  request_id text NOT NULL,
  method text NOT NULL,
  request_hash text NOT NULL,
  response bytea NULL,
  create_time timestamptz NOT NULL,
  PRIMARY KEY (principal, request_id)
);
CREATE INDEX idempotency_keys_age_idx ON idempotency_keys (create_time);
`;

export const migrations: Migration[] = [
  { version: 1, name: "workitem core", sql: core },
  { version: 2, name: "outbox", sql: outboxMigrationSql() },
];
