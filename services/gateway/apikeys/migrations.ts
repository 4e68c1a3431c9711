import { outboxMigrationSql } from "../../../mesh/outbox/schema.js";
import type { Migration } from "../../../mesh/postgres/migrations.js";

/**
 * The gateway's schema: API keys, request-id idempotency and the event outbox. Released
 * migrations are never edited; changes are new entries.
 *
 * - `lookup` finds a key from its secret in one indexed read; only `secret_sha256` is stored.
 * - `version` drives the etag and the events' aggregate_version.
 * - Display-name uniqueness among ACTIVE keys and the 100-active-keys limit depend on the
 *   clock (expiry), so they are enforced in code under a per-project advisory lock.
 */
export const apiKeyMigrations: Migration[] = [
  {
    version: 1,
    name: "api_keys",
    sql: `CREATE TABLE api_keys (
  id uuid PRIMARY KEY,
  project_id text NOT NULL,
  display_name text NOT NULL,
  lookup text NOT NULL UNIQUE,
  key_prefix text NOT NULL,
  secret_sha256 bytea NOT NULL CHECK (octet_length(secret_sha256) = 32),
  role text NOT NULL CHECK (role IN ('maintainer', 'viewer', 'agent')),
  scopes text[] NOT NULL DEFAULT '{}',
  requests_per_minute integer NOT NULL DEFAULT 0 CHECK (requests_per_minute BETWEEN 0 AND 100000),
  created_by text NOT NULL,
  create_time timestamptz NOT NULL,
  expire_time timestamptz NOT NULL,
  revoke_time timestamptz NULL,
  revoked_by text NOT NULL DEFAULT '',
  revoke_reason text NOT NULL DEFAULT '',
  last_use_time timestamptz NULL,
  version integer NOT NULL DEFAULT 1
);
CREATE INDEX api_keys_project_idx ON api_keys (project_id, create_time DESC, id DESC);
`,
  },
  {
    version: 2,
    name: "idempotency_keys",
    sql: `CREATE TABLE idempotency_keys (
  principal text NOT NULL,
  request_id text NOT NULL,
  method text NOT NULL,
  request_hash text NOT NULL,
  response bytea NULL,
  create_time timestamptz NOT NULL,
  PRIMARY KEY (principal, request_id)
);
`,
  },
  { version: 3, name: "outbox", sql: outboxMigrationSql() },
];
