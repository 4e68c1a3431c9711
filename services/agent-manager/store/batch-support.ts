/** Helpers shared by the batched run changes. */
import { notFound } from "../../../mesh/errors.js";
import { checkLease } from "../domain/run-state.js";
import { notLeaseHolder, staleLease } from "../errors.js";
import type { BatchContext, Outcome } from "./group-commit.js";
import type { RunRow } from "./runs.js";

/** A row as returned by an UPDATE ... RETURNING r.*, old.state AS prev_state. */
export type ChangedRow = RunRow & { prev_state?: number };

/** Rows by id, for items that did not match their conditional update. */
export async function rowsById(ctx: BatchContext, ids: readonly string[]): Promise<Map<string, RunRow>> {
  if (ids.length === 0) return new Map();
  const { rows } = await ctx.client.query<RunRow>("SELECT * FROM runs WHERE id = ANY($1::uuid[])", [ids]);
  return new Map(rows.map((r) => [r.id, r]));
}

/** Items whose change is conditional on holding the run's lease. */
export interface LeasedItem {
  runId: string;
  agentId: string;
  token: bigint;
}

/** The refusal of an item whose conditional update matched nothing. */
export function refusal(row: RunRow | undefined, item: LeasedItem): Outcome<never> {
  if (row === undefined) return { ok: false, error: notFound("run", item.runId) };
  const why = checkLease(
    { state: row.state, fencingToken: row.fencing_token, agentId: row.agent_id },
    item.agentId,
    item.token,
  );
  return {
    ok: false,
    error: why === "NOT_LEASE_HOLDER" ? notLeaseHolder(item.runId) : staleLease(item.runId, row.state),
  };
}

/**
 * Outcomes for leased items: matched rows win; for the others `replay` may accept the current
 * row (an idempotent retry), else the lease refusal applies.
 */
export async function leasedOutcomes<I extends LeasedItem, R>(
  ctx: BatchContext,
  items: readonly I[],
  matched: ReadonlyMap<string, ChangedRow>,
  onMatch: (row: ChangedRow, item: I) => R,
  replay: (row: RunRow, item: I) => R | undefined,
): Promise<Outcome<R>[]> {
  const missing = items.filter((i) => !matched.has(i.runId)).map((i) => i.runId);
  const current = await rowsById(ctx, missing);
  return items.map((item) => {
    const row = matched.get(item.runId);
    if (row) return { ok: true, value: onMatch(row, item) };
    const now = current.get(item.runId);
    const again = now ? replay(now, item) : undefined;
    return again !== undefined ? { ok: true, value: again } : refusal(now, item);
  });
}

/** pg text for a bigint array parameter. */
export function bigints(values: readonly bigint[]): string[] {
  return values.map((v) => v.toString());
}
