import { outboxMigrationSql } from "../../../mesh/outbox/schema.js";
import type { Migration } from "../../../mesh/postgres/migrations.js";

/**
 * The scheduler's schema. Postgres is the truth about every task and saga; Redis only indexes
 * what is here (see queue/), so everything needed to rebuild the index lives in `tasks`.
 *
 * - tasks: one row per queue entry; at most one non-terminal task per work item (partial
 *   unique index). `dispatch_token` + `dispatch_deadline` mark a claim in progress, so a
 *   crashed dispatcher's claim is handed back instead of lost.
 * - task_dependencies: the DAG's edges (task waits for work item).
 * - work_item_outcomes: what the scheduler knows of each work item's end (DONE, FAILED,
 *   CANCELLED), versioned by the work item's aggregate version so late events cannot undo news.
 * - run_outcomes: outcomes applied, by run id (RunCompleted and ReportRunOutcome are idempotent).
 * - effects: calls owed to other services (work item transitions, quota releases, run
 *   cancellations), written in the transaction that decided them and executed in order per
 *   work item, so a crash between deciding and calling loses nothing.
 * - idempotency, processed_events: request ids and consumed event ids already handled.
 * - sagas, saga_steps: the WorkItemCreation saga, persisted before and after every step.
 */
const initial = `
CREATE TABLE tasks (
  id uuid PRIMARY KEY,
  work_item_id text NOT NULL,
  project_id text NOT NULL,
  state text NOT NULL,
  priority int NOT NULL,
  not_before timestamptz,
  max_retries int NOT NULL,
  backoff_base_ms bigint NOT NULL,
  backoff_cap_ms bigint NOT NULL,
  jitter text NOT NULL,
  dependency_failure_policy text NOT NULL,
  agent_selector jsonb NOT NULL DEFAULT '{}'::jsonb,
  attempt int NOT NULL DEFAULT 0,
  failures int NOT NULL DEFAULT 0,
  approval_pending boolean NOT NULL DEFAULT false,
  blocked boolean NOT NULL DEFAULT false,
  backoff_until timestamptz,
  quota_until timestamptz,
  quota_detail text NOT NULL DEFAULT '',
  quota_limit text NOT NULL DEFAULT '',
  review_required boolean NOT NULL DEFAULT false,
  initial_reservation_key text NOT NULL DEFAULT '',
  reservation_key text NOT NULL DEFAULT '',
  reservation_held boolean NOT NULL DEFAULT false,
  dispatch_token uuid,
  dispatch_deadline timestamptz,
  last_run_id text NOT NULL DEFAULT '',
  last_error text NOT NULL DEFAULT '',
  scheduled_by text NOT NULL,
  create_time timestamptz NOT NULL,
  update_time timestamptz NOT NULL,
  ready_time timestamptz,
  dispatch_time timestamptz,
  finish_time timestamptz,
  version bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX tasks_live_work_item ON tasks (work_item_id)
  WHERE state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED');
CREATE INDEX tasks_queue_order ON tasks (priority DESC, (COALESCE(ready_time, create_time)), id);
CREATE INDEX tasks_ready ON tasks (priority DESC, ready_time) WHERE state = 'READY';
CREATE INDEX tasks_waiting ON tasks (project_id) WHERE state = 'WAITING';
CREATE INDEX tasks_claims ON tasks (dispatch_deadline) WHERE dispatch_token IS NOT NULL;
CREATE INDEX tasks_work_item ON tasks (work_item_id, create_time DESC);

CREATE TABLE task_dependencies (
  task_id uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  depends_on text NOT NULL,
  position int NOT NULL,
  PRIMARY KEY (task_id, depends_on)
);
CREATE INDEX task_dependencies_target ON task_dependencies (depends_on);

CREATE TABLE work_item_outcomes (
  work_item_id text PRIMARY KEY,
  project_id text NOT NULL,
  outcome text NOT NULL DEFAULT '',
  version bigint NOT NULL DEFAULT 0,
  update_time timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE run_outcomes (
  run_id text PRIMARY KEY,
  task_id uuid NOT NULL,
  outcome text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE effects (
  seq bigserial PRIMARY KEY,
  work_item_id text NOT NULL,
  task_id text NOT NULL,
  kind text NOT NULL,
  payload jsonb NOT NULL,
  attempts int NOT NULL DEFAULT 0,
  due_at timestamptz NOT NULL DEFAULT now(),
  last_error text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX effects_work_item ON effects (work_item_id, seq);
CREATE INDEX effects_due ON effects (due_at, seq);

CREATE TABLE idempotency (
  method text NOT NULL,
  request_id text NOT NULL,
  request_hash text NOT NULL,
  result_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (method, request_id)
);

CREATE TABLE processed_events (
  event_id text PRIMARY KEY,
  processed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sagas (
  id uuid PRIMARY KEY,
  saga_type text NOT NULL,
  project_id text NOT NULL,
  request_id text NOT NULL UNIQUE,
  request_hash text NOT NULL,
  request bytea NOT NULL,
  state text NOT NULL,
  work_item_id text NOT NULL DEFAULT '',
  task_id text NOT NULL DEFAULT '',
  error bytea,
  failed_step text NOT NULL DEFAULT '',
  started_by jsonb NOT NULL,
  correlation_id text NOT NULL DEFAULT '',
  owner text NOT NULL DEFAULT '',
  lease_until timestamptz NOT NULL DEFAULT '-infinity',
  create_time timestamptz NOT NULL,
  update_time timestamptz NOT NULL,
  finish_time timestamptz,
  version bigint NOT NULL DEFAULT 1
);
CREATE INDEX sagas_active ON sagas (lease_until) WHERE state IN ('RUNNING', 'COMPENSATING');
CREATE INDEX sagas_by_time ON sagas (create_time DESC, id DESC);

CREATE TABLE saga_steps (
  saga_id uuid NOT NULL REFERENCES sagas (id) ON DELETE CASCADE,
  idx int NOT NULL,
  name text NOT NULL,
  state text NOT NULL,
  attempt int NOT NULL DEFAULT 0,
  error bytea,
  start_time timestamptz,
  finish_time timestamptz,
  PRIMARY KEY (saga_id, idx)
);
`;

export const migrations: Migration[] = [
  { version: 1, name: "tasks, dependencies, effects and sagas", sql: initial },
  { version: 2, name: "outbox", sql: outboxMigrationSql() },
];
