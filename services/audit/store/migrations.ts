import { outboxMigrationSql } from "../../../mesh/outbox/schema.js";
import type { Migration } from "../../../mesh/postgres/migrations.js";

/**
 * The trail: one row per event, one global hash chain.
 *
 * Every column that goes into AuditRecord is stored losslessly, because VerifyChain rebuilds
 * each record from its row and re-hashes it: timestamps as microsecond timestamptz (indexable)
 * plus the nanoseconds below the microsecond; uint64 aggregate_version as numeric(20); an
 * absent actor as actor_type NULL (an empty Actor and no Actor encode differently).
 * payload_json is text, not jsonb: jsonb would reorder keys and change the hashed bytes.
 * event_name (the short type name, for filters) is generated from event_type, so it cannot be
 * edited apart from a hashed column.
 *
 * chain_head is the single-writer lock and the chain's anchor: appends lock it FOR UPDATE, and
 * it remembers the last sequence and hash, so deleting the newest records is detectable too.
 *
 * Append-only is enforced by triggers refusing UPDATE, DELETE and TRUNCATE of records and any
 * head change other than advancing (by one here; onto the newest record since version 3). They
 * stop the application and mistakes, not a superuser or the table owner (ALTER TABLE ...
 * DISABLE TRIGGER, session_replication_role = replica); that tampering is what VerifyChain
 * detects (docs/adr/0008-audit-trail.md).
 */
const TRAIL_SQL = `
CREATE TABLE audit_records (
  sequence bigint PRIMARY KEY CHECK (sequence > 0),
  event_id text NOT NULL UNIQUE,
  event_type text NOT NULL,
  event_name text GENERATED ALWAYS AS (substring(event_type from '[^.]*$')) STORED,
  aggregate_type text NOT NULL,
  aggregate_id text NOT NULL,
  aggregate_version numeric(20, 0) NOT NULL CHECK (aggregate_version >= 0),
  project_id text NOT NULL,
  actor_type integer NULL,
  actor_id text NOT NULL,
  actor_display_name text NOT NULL,
  correlation_id text NOT NULL,
  causation_id text NOT NULL,
  occurred_at timestamptz NULL,
  occurred_at_subus integer NULL CHECK (occurred_at_subus BETWEEN 0 AND 999),
  recorded_at timestamptz NOT NULL,
  recorded_at_subus integer NOT NULL CHECK (recorded_at_subus BETWEEN 0 AND 999),
  payload_json text NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL,
  source text NOT NULL,
  trace_id text NOT NULL
);
CREATE INDEX audit_records_project_idx ON audit_records (project_id, sequence);
CREATE INDEX audit_records_aggregate_idx ON audit_records (aggregate_type, aggregate_id, sequence);
CREATE INDEX audit_records_actor_idx ON audit_records (actor_id, sequence);
CREATE INDEX audit_records_correlation_idx ON audit_records (correlation_id, sequence);
CREATE INDEX audit_records_event_name_idx ON audit_records (event_name, sequence);
CREATE INDEX audit_records_occurred_idx ON audit_records (occurred_at, occurred_at_subus);

CREATE TABLE chain_head (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  last_sequence bigint NOT NULL,
  last_hash text NOT NULL
);
INSERT INTO chain_head (singleton, last_sequence, last_hash) VALUES (true, 0, repeat('0', 64));

CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION 'audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$fn$;
CREATE TRIGGER audit_records_no_update_delete BEFORE UPDATE OR DELETE ON audit_records
  FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
  FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

CREATE FUNCTION audit_head_advance_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'DELETE' OR NEW.last_sequence <> OLD.last_sequence + 1 THEN
    RAISE EXCEPTION 'audit chain head only advances by one: % refused', TG_OP
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$fn$;
CREATE TRIGGER chain_head_advance_only BEFORE UPDATE OR DELETE ON chain_head
  FOR EACH ROW EXECUTE FUNCTION audit_head_advance_only();
CREATE TRIGGER chain_head_no_truncate BEFORE TRUNCATE ON chain_head
  FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
`;

/**
 * Appends write a batch of records in one transaction and advance the head once, by the batch's
 * size, so "advances by one" becomes: the head moves forward only, onto a record that exists
 * with exactly that hash, and no record lies beyond it. It still cannot be rolled back (which
 * would hide a deleted tail) nor point past or beside the trail.
 */
const HEAD_ADVANCES_TO_NEWEST_SQL = `
CREATE OR REPLACE FUNCTION audit_head_advance_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'DELETE' OR NEW.last_sequence <= OLD.last_sequence
    OR NOT EXISTS (SELECT 1 FROM audit_records WHERE sequence = NEW.last_sequence AND hash = NEW.last_hash)
    OR EXISTS (SELECT 1 FROM audit_records WHERE sequence > NEW.last_sequence) THEN
    RAISE EXCEPTION 'audit chain head only advances, onto the newest record: % refused', TG_OP
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$fn$;
`;

/** The audit service's schema history, oldest first. Never edit an applied migration. */
export const auditMigrations: Migration[] = [
  { version: 1, name: "audit trail and chain head", sql: TRAIL_SQL },
  { version: 2, name: "outbox", sql: outboxMigrationSql() },
  { version: 3, name: "chain head advances by a batch", sql: HEAD_ADVANCES_TO_NEWEST_SQL },
];
