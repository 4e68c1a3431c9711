/**
 * SQL creating the `outbox` table in the current `search_path`, for a service to append to its
 * own migrations (e.g. `{ version: 3, name: "outbox", sql: outboxMigrationSql() }`).
 *
 * Why a function rather than a shared migration: the table lives in each service's own schema
 * (database per service), and the migration runner checksums the text, so the SQL must stay
 * byte-for-byte stable once released; change it only by adding a new migration.
 *
 * - `seq` orders publication; `id` is the event id, doubling as the JetStream `Nats-Msg-Id`.
 * - The partial index on unpublished rows keeps the relay's poll cheap however many published
 *   rows are retained; the one on `published_at` serves the retention sweep.
 */
export function outboxMigrationSql(): string {
  return `CREATE TABLE outbox (
  seq bigserial PRIMARY KEY,
  id uuid NOT NULL UNIQUE,
  subject text NOT NULL,
  payload bytea NOT NULL,
  headers jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz NULL
);
CREATE INDEX outbox_unpublished_idx ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;
`;
}
