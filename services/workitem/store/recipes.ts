import type { ParsedRecipe } from "../domain/recipe/index.js";
import { type Db, num } from "./db.js";

/** One immutable recipe version. */
export interface RecipeRow {
  workItemId: string;
  version: number;
  sha256: string;
  sourceYaml: string;
  parsed: ParsedRecipe;
  createdBy: string;
  createTime: Date;
}

const COLUMNS = "work_item_id, version, sha256, source_yaml, parsed, created_by, create_time";

function fromRow(r: Record<string, unknown>): RecipeRow {
  return {
    workItemId: r.work_item_id as string,
    version: num(r.version),
    sha256: r.sha256 as string,
    sourceYaml: r.source_yaml as string,
    parsed: r.parsed as ParsedRecipe,
    createdBy: r.created_by as string,
    createTime: r.create_time as Date,
  };
}

export async function insertRecipe(db: Db, r: RecipeRow): Promise<void> {
  await db.query(`INSERT INTO recipes (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
    r.workItemId,
    r.version,
    r.sha256,
    r.sourceYaml,
    JSON.stringify(r.parsed),
    r.createdBy,
    r.createTime,
  ]);
}

export async function getRecipe(db: Db, workItemId: string, version: number): Promise<RecipeRow | undefined> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM recipes WHERE work_item_id = $1 AND version = $2`, [
    workItemId,
    version,
  ]);
  return rows[0] ? fromRow(rows[0]) : undefined;
}

/** Versions newest first, strictly below `beforeVersion` when given. */
export async function listRecipes(
  db: Db,
  workItemId: string,
  limit: number,
  beforeVersion?: number,
): Promise<RecipeRow[]> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM recipes WHERE work_item_id = $1 AND ($2::int IS NULL OR version < $2)
     ORDER BY version DESC LIMIT $3`,
    [workItemId, beforeVersion ?? null, limit],
  );
  return rows.map(fromRow);
}
