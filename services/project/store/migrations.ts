import type { Migration } from "../../../mesh/postgres/migrations.js";

/**
 * The project service's schema history. Forward-only and backward compatible (an older
 * replica may run against a newer schema during a rollout).
 *
 * Notes on the design:
 * - every mutable row carries `version`, the counter etags are derived from;
 * - enum columns hold the proto enum numbers (smallint), so no mapping table can drift;
 * - partial unique indexes enforce "at most one PROPOSED and one APPROVED draft per
 *   project" even if a code path forgot to lock;
 * - quota limits are NULL while the configured defaults apply, so changing the defaults
 *   changes every project that never had SetQuota called.
 */
const core = `
CREATE TABLE projects (
  id uuid PRIMARY KEY,
  name text NOT NULL CONSTRAINT projects_name_key UNIQUE,
  display_name text NOT NULL,
  description text NOT NULL DEFAULT '',
  labels jsonb NOT NULL DEFAULT '{}'::jsonb,
  state smallint NOT NULL,
  created_by text NOT NULL,
  create_time timestamptz NOT NULL,
  update_time timestamptz NOT NULL,
  archive_time timestamptz,
  version bigint NOT NULL
);
CREATE INDEX projects_active_by_creator ON projects (created_by) WHERE state = 1;
CREATE INDEX projects_labels ON projects USING gin (labels jsonb_path_ops);

CREATE TABLE members (
  project_id uuid NOT NULL REFERENCES projects (id),
  principal_id text NOT NULL,
  principal_type smallint NOT NULL,
  role smallint NOT NULL,
  added_by text NOT NULL,
  add_time timestamptz NOT NULL,
  update_time timestamptz NOT NULL,
  version bigint NOT NULL,
  PRIMARY KEY (project_id, principal_id)
);
CREATE INDEX members_by_principal ON members (principal_id, project_id);

CREATE TABLE visions (
  project_id uuid NOT NULL REFERENCES projects (id),
  version bigint NOT NULL,
  problem text NOT NULL,
  constraints text NOT NULL,
  success_criteria text NOT NULL,
  author text NOT NULL,
  create_time timestamptz NOT NULL,
  PRIMARY KEY (project_id, version)
);

CREATE TABLE requirements (
  id uuid PRIMARY KEY,
  project_id uuid NOT NULL REFERENCES projects (id),
  state smallint NOT NULL,
  content_version bigint NOT NULL,
  author text NOT NULL,
  decided_by text NOT NULL DEFAULT '',
  decision_reason text NOT NULL DEFAULT '',
  create_time timestamptz NOT NULL,
  update_time timestamptz NOT NULL,
  decide_time timestamptz,
  superseded_by uuid,
  version bigint NOT NULL
);
CREATE INDEX requirements_by_project ON requirements (project_id, create_time DESC, id DESC);
CREATE UNIQUE INDEX requirements_one_proposed ON requirements (project_id) WHERE state = 1;
CREATE UNIQUE INDEX requirements_one_approved ON requirements (project_id) WHERE state = 2;

CREATE TABLE requirements_revisions (
  requirements_id uuid NOT NULL REFERENCES requirements (id),
  version bigint NOT NULL,
  content text NOT NULL,
  editor text NOT NULL,
  create_time timestamptz NOT NULL,
  PRIMARY KEY (requirements_id, version)
);

CREATE TABLE quotas (
  project_id uuid PRIMARY KEY REFERENCES projects (id),
  runs_per_day integer,
  max_concurrent_runs integer,
  quota_window smallint NOT NULL DEFAULT 1,
  updated_by text NOT NULL DEFAULT '',
  update_time timestamptz,
  version bigint NOT NULL,
  event_seq bigint NOT NULL DEFAULT 0,
  runs_exhausted_window timestamptz,
  concurrency_exhausted_window timestamptz
);

CREATE TABLE reservations (
  project_id uuid NOT NULL REFERENCES projects (id),
  key text NOT NULL,
  work_item_id text NOT NULL,
  state smallint NOT NULL,
  window_start timestamptz NOT NULL,
  window_reset timestamptz NOT NULL,
  create_time timestamptz NOT NULL,
  expire_time timestamptz NOT NULL,
  release_time timestamptz,
  PRIMARY KEY (project_id, key)
);
CREATE INDEX reservations_held ON reservations (project_id, expire_time) WHERE state = 1;
CREATE INDEX reservations_by_window ON reservations (project_id, window_start) WHERE state <> 3;

CREATE TABLE idempotency_keys (
  principal text NOT NULL,
  request_id text NOT NULL,
  method text NOT NULL,
  request_hash text NOT NULL,
  response bytea,
  create_time timestamptz NOT NULL,
  PRIMARY KEY (principal, request_id)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (create_time);
`;

export const migrations: Migration[] = [
  { version: 1, name: "projects, members, vision, requirements, quotas", sql: core },
];
