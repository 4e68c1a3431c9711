import { outboxMigrationSql } from "../../../mesh/outbox/schema.js";
import type { Migration } from "../../../mesh/postgres/migrations.js";

/**
 * The notification schema. Never edit an applied migration; add one.
 *
 * - `subscriptions` are soft-deleted (`delete_time`): their deliveries and dead letters stay
 *   readable, and authorised by project, until retention removes them.
 * - `deliveries` is the unit of work, one row per (event, subscription) — the unique constraint
 *   is what makes consuming an event twice harmless. Workers claim due rows with
 *   `FOR UPDATE SKIP LOCKED` and own them until `claimed_until` (a lease), fenced by
 *   `claim_token`: a worker whose lease passed cannot record over its successor.
 * - `delivery_attempts` are the API's Delivery records: one PENDING row for the next attempt,
 *   turned into SUCCEEDED / FAILED / DEAD_LETTERED when it is made.
 * - `events` holds the envelope of each event with at least one delivery, rendered at send
 *   time with the subscription's current template (redelivery uses the current one).
 * - `alert_occurrences` / `alert_firings` are the counting state of alert rules (event times);
 *   `alert_state` is the row locked to decide one (subscription, key) at a time.
 * - `subscription_changes` counts changes to `subscriptions` (a trigger, so every writer counts,
 *   whatever its version): replicas compare it with the count their in-memory subscription index
 *   was loaded at (events/subscription-cache.ts). Its one row is updated in the writer's
 *   transaction, so the count becomes visible exactly when the change does.
 */
export const migrations: Migration[] = [
  {
    version: 1,
    name: "subscriptions, deliveries, attempts, dead letters, alerts, idempotency",
    sql: `
CREATE TABLE subscriptions (
  seq bigserial NOT NULL UNIQUE,
  id uuid PRIMARY KEY,
  project_id text NOT NULL,
  display_name text NOT NULL,
  event_types text[] NOT NULL,
  channel_type text NOT NULL CHECK (channel_type IN ('webhook', 'slack', 'email')),
  channel jsonb NOT NULL,
  credential bytea,
  template text NOT NULL,
  alert_rule jsonb,
  enabled boolean NOT NULL,
  created_by text NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now(),
  update_time timestamptz NOT NULL DEFAULT now(),
  version bigint NOT NULL DEFAULT 1,
  delete_time timestamptz
);
CREATE INDEX subscriptions_live_project_idx ON subscriptions (project_id) WHERE delete_time IS NULL;

CREATE TABLE events (
  id text PRIMARY KEY,
  envelope bytea NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
  id uuid PRIMARY KEY,
  event_id text NOT NULL,
  subscription_id uuid NOT NULL,
  event_type text NOT NULL,
  project_id text NOT NULL,
  alert jsonb,
  state text NOT NULL CHECK (state IN ('pending', 'succeeded', 'dead_lettered', 'cancelled')),
  attempts integer NOT NULL DEFAULT 0,
  series_start integer NOT NULL DEFAULT 1,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  claimed_until timestamptz,
  claim_token uuid,
  create_time timestamptz NOT NULL DEFAULT now(),
  update_time timestamptz NOT NULL DEFAULT now(),
  UNIQUE (event_id, subscription_id)
);
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_subscription_idx ON deliveries (subscription_id);

CREATE TABLE delivery_attempts (
  seq bigserial NOT NULL UNIQUE,
  id uuid PRIMARY KEY,
  delivery_key uuid NOT NULL,
  subscription_id uuid NOT NULL,
  event_id text NOT NULL,
  event_type text NOT NULL,
  project_id text NOT NULL,
  attempt integer NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'failed', 'dead_lettered')),
  status_code integer NOT NULL DEFAULT 0,
  latency_ms integer,
  error text NOT NULL DEFAULT '',
  next_attempt_time timestamptz,
  attempt_time timestamptz NOT NULL DEFAULT now(),
  test boolean NOT NULL DEFAULT false,
  UNIQUE (delivery_key, attempt)
);
CREATE INDEX delivery_attempts_subscription_idx ON delivery_attempts (subscription_id, seq DESC);
CREATE INDEX delivery_attempts_project_idx ON delivery_attempts (project_id, seq DESC);
CREATE INDEX delivery_attempts_time_idx ON delivery_attempts (attempt_time);

CREATE TABLE dead_letters (
  id uuid PRIMARY KEY,
  delivery_key uuid NOT NULL UNIQUE,
  subscription_id uuid NOT NULL,
  event_id text NOT NULL,
  event_type text NOT NULL,
  project_id text NOT NULL,
  attempts integer NOT NULL,
  last_status_code integer NOT NULL,
  last_error text NOT NULL,
  state text NOT NULL CHECK (state IN ('open', 'redelivering', 'resolved')),
  dead_letter_time timestamptz NOT NULL DEFAULT now(),
  redeliver_time timestamptz,
  redelivered_by text NOT NULL DEFAULT ''
);
CREATE INDEX dead_letters_subscription_idx ON dead_letters (subscription_id, dead_letter_time DESC, id DESC);

CREATE TABLE alert_occurrences (
  subscription_id uuid NOT NULL,
  key text NOT NULL,
  occurrence_id text NOT NULL,
  occurred_at timestamptz NOT NULL,
  PRIMARY KEY (subscription_id, key, occurrence_id)
);
CREATE INDEX alert_occurrences_time_idx ON alert_occurrences (subscription_id, key, occurred_at);

CREATE TABLE alert_state (
  subscription_id uuid NOT NULL,
  key text NOT NULL,
  last_fired_at timestamptz,
  PRIMARY KEY (subscription_id, key)
);

CREATE TABLE idempotency_keys (
  principal text NOT NULL,
  request_id text NOT NULL,
  method text NOT NULL,
  request_hash text NOT NULL,
  response bytea NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (principal, request_id)
);
`,
  },
  { version: 2, name: "outbox", sql: outboxMigrationSql() },
  {
    version: 3,
    name: "alert firings",
    // alert_state.last_fired_at is no longer written (kept for replicas of the previous version
    // during a rolling update); its values become firings.
    sql: `
CREATE TABLE alert_firings (
  subscription_id uuid NOT NULL,
  key text NOT NULL,
  fired_at timestamptz NOT NULL,
  count integer NOT NULL,
  event_id text NOT NULL,
  PRIMARY KEY (subscription_id, key, fired_at)
);
INSERT INTO alert_firings (subscription_id, key, fired_at, count, event_id)
  SELECT subscription_id, key, last_fired_at, 0, '' FROM alert_state WHERE last_fired_at IS NOT NULL;
`,
  },
  {
    version: 4,
    name: "subscription change counter",
    // SET search_path FROM CURRENT pins the function to this schema (migrations run with it set).
    sql: `
CREATE TABLE subscription_changes (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  n bigint NOT NULL
);
INSERT INTO subscription_changes (n) VALUES (0);
CREATE FUNCTION count_subscription_change() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  UPDATE subscription_changes SET n = n + 1;
  RETURN NULL;
END
$$;
CREATE TRIGGER subscriptions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON subscriptions
  FOR EACH STATEMENT EXECUTE FUNCTION count_subscription_change();
`,
  },
];
