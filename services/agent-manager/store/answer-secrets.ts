/**
 * The plaintext answer values of runs, for redacting them from those runs' logs.
 *
 * Why a cache: every log append needs them, and almost every run has none. Values are kept for
 * a few seconds (an answer recorded by another replica shows within that time; one recorded
 * here invalidates at once) and dropped when the run ends, when its answers are erased.
 */
import { type Keys, openAnswer } from "../domain/keys.js";
import type { Db } from "./runs.js";

const MAX_ENTRIES = 20_000;

export class AnswerSecrets {
  readonly #cache = new Map<string, { values: string[]; at: number }>();
  /** Invalidations so far: a load that started before one may not fill the cache. */
  #generation = 0;

  constructor(
    private readonly keys: Keys,
    private readonly ttlMs = 5_000,
  ) {}

  /** Secret values per run (runs without answers map to []). */
  async forRuns(db: Db, runIds: readonly string[]): Promise<Map<string, string[]>> {
    const now = Date.now();
    const out = new Map<string, string[]>();
    const load: string[] = [];
    for (const id of runIds) {
      const hit = this.#cache.get(id);
      if (hit && now - hit.at < this.ttlMs) out.set(id, hit.values);
      else load.push(id);
    }
    if (load.length === 0) return out;
    const generation = this.#generation;
    const { rows } = await db.query<{ id: string; run_id: string; answer_sealed: Buffer }>(
      "SELECT id, run_id, answer_sealed FROM info_requests WHERE run_id = ANY($1::uuid[]) AND answer_sealed IS NOT NULL",
      [load],
    );
    for (const id of load) out.set(id, []);
    for (const r of rows) {
      const values = Object.values(openAnswer(this.keys, r.answer_sealed, r.id));
      out.set(r.run_id, [...(out.get(r.run_id) ?? []), ...values]);
    }
    if (generation !== this.#generation) return out;
    if (this.#cache.size + load.length > MAX_ENTRIES) this.#cache.clear();
    for (const id of load) this.#cache.set(id, { values: out.get(id) ?? [], at: now });
    return out;
  }

  /** An answer of the run was recorded: reload next time. */
  invalidate(runId: string): void {
    this.#generation += 1;
    this.#cache.delete(runId);
  }
}
