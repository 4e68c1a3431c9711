import type pg from "pg";
import type { Principal } from "../../../mesh/context.js";
import { type Access, authorize } from "../authz.js";
import { etagOf } from "../convert.js";
import { UUID } from "../domain/work-item-fields.js";
import { etagMismatch, invalidArgument, notFound } from "../errors.js";
import type { Db } from "../store/db.js";
import { getWorkItem, type WorkItemRow } from "../store/work-items.js";

/** Refuses a missing or malformed id up front, naming the field. */
export function requireId(value: string, field: string): string {
  if (value === "") throw invalidArgument(`${field} is required`, [{ field, description: "is required" }]);
  if (!UUID.test(value))
    throw invalidArgument(`${field} must be a UUID`, [{ field, description: "must be a UUID" }]);
  return value.toLowerCase();
}

/** Loads an item the caller may access; outsiders get the same NOT_FOUND as for a missing item. */
export async function itemFor(
  db: Db,
  caller: Principal,
  id: string,
  access: Access,
  lock = false,
): Promise<WorkItemRow> {
  const item = await getWorkItem(db, id, lock);
  const resource = { type: "work_item", name: id };
  if (!item) throw notFound(resource.type, id);
  authorize(caller, item.projectId, access, resource);
  return item;
}

/** An item locked for a change by a caller allowed to make it, at the etag the caller saw. */
export async function itemForChange(
  tx: pg.PoolClient,
  caller: Principal,
  id: string,
  etag: string,
  access: Access = "write",
): Promise<WorkItemRow> {
  const item = await itemFor(tx, caller, id, access, true);
  checkEtag(etag, item.version, `work_items/${id}`);
  return item;
}

/** ABORTED ETAG_MISMATCH when an etag was sent and is stale; etags are optional. */
export function checkEtag(sent: string, version: number, subject: string): void {
  if (sent !== "" && sent !== etagOf(version)) throw etagMismatch(subject);
}
