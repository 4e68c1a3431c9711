import { create } from "@bufbuild/protobuf";
import type pg from "pg";
import {
  SagaCompensatedSchema,
  SagaCompletedSchema,
  SagaFailedSchema,
  SagaStepCompletedSchema,
} from "../../../gen/codex/events/v1/scheduler_events_pb.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import type { Core } from "../core.js";
import type { StepStateName } from "../domain/saga-plan.js";
import { stage } from "../events/publish.js";
import { type SagaRow, stepsOf } from "../store/sagas.js";
import { statusOf, stepMessage } from "./saga-message.js";

/** Another replica took the saga over (our lease lapsed): stop touching it. */
export class LostOwnership extends Error {
  override readonly name = "LostOwnership";
}

/**
 * Every write of the saga runner: one transaction each, fenced by ownership (`owner = me`), so
 * a replica that lost its lease cannot overwrite its successor's progress. Every step change
 * stages SagaStepCompleted (for SUCCEEDED, SKIPPED, FAILED, COMPENSATED, COMPENSATION_FAILED),
 * and the saga's end stages SagaCompleted, SagaCompensated or SagaFailed, in the same commit.
 */
export class SagaStore {
  constructor(
    private readonly core: Core,
    private readonly owner: string,
    private readonly leaseMs: number,
  ) {}

  async #tx(saga: SagaRow, fn: (c: pg.PoolClient) => Promise<void>, state = ["RUNNING", "COMPENSATING"]) {
    await withTransaction(this.core.pool, async (c) => {
      const { rowCount } = await c.query(
        `UPDATE sagas SET update_time = now(), version = version + 1,
                lease_until = now() + make_interval(secs => $3::float8 / 1000)
          WHERE id = $1 AND owner = $2 AND state = ANY($4)`,
        [saga.id, this.owner, this.leaseMs, state],
      );
      if (rowCount === 0) throw new LostOwnership(`saga ${saga.id} is no longer ours`);
      await fn(c);
    });
  }

  async #step(c: pg.PoolClient, saga: SagaRow, idx: number, set: string, params: unknown[] = []) {
    await c.query(`UPDATE saga_steps SET ${set} WHERE saga_id = $1 AND idx = $2`, [saga.id, idx, ...params]);
  }

  async #announce(c: pg.PoolClient, saga: SagaRow, idx: number) {
    const step = (await stepsOf(c, [saga.id])).get(saga.id)?.[idx];
    if (!step) return;
    await stage(c, this.core.subjects, this.#cause(saga), {
      schema: SagaStepCompletedSchema,
      payload: create(SagaStepCompletedSchema, {
        sagaId: saga.id,
        sagaType: saga.sagaType,
        step: stepMessage(step),
      }),
      aggregateType: "saga",
      aggregateId: saga.id,
      projectId: saga.projectId,
    });
  }

  #cause(saga: SagaRow) {
    return { principal: saga.startedBy, correlationId: saga.correlationId };
  }

  beginAction(saga: SagaRow, idx: number) {
    return this.#tx(saga, (c) =>
      this.#step(
        c,
        saga,
        idx,
        "state = 'RUNNING', attempt = attempt + 1, start_time = COALESCE(start_time, now())",
      ),
    );
  }

  /** A retryable failure: the step stays RUNNING with its last error. */
  recordError(saga: SagaRow, idx: number, error: Uint8Array) {
    return this.#tx(saga, (c) => this.#step(c, saga, idx, "error = $3", [Buffer.from(error)]));
  }

  completeAction(saga: SagaRow, idx: number, out: { workItemId?: string; taskId?: string }, last: boolean) {
    return this.#tx(saga, async (c) => {
      await this.#step(c, saga, idx, "state = 'SUCCEEDED', error = NULL, finish_time = now()");
      await c.query(
        `UPDATE sagas SET work_item_id = COALESCE($2, work_item_id), task_id = COALESCE($3, task_id),
                state = CASE WHEN $4 THEN 'COMPLETED' ELSE state END,
                finish_time = CASE WHEN $4 THEN now() ELSE finish_time END WHERE id = $1`,
        [saga.id, out.workItemId ?? null, out.taskId ?? null, last],
      );
      await this.#announce(c, saga, idx);
      if (!last) return;
      await stage(c, this.core.subjects, this.#cause(saga), {
        schema: SagaCompletedSchema,
        payload: create(SagaCompletedSchema, {
          sagaId: saga.id,
          sagaType: saga.sagaType,
          projectId: saga.projectId,
          workItemId: out.workItemId ?? saga.workItemId,
          taskId: out.taskId ?? saga.taskId,
        }),
        aggregateType: "saga",
        aggregateId: saga.id,
        projectId: saga.projectId,
      });
    });
  }

  skip(saga: SagaRow, idx: number) {
    return this.#tx(saga, async (c) => {
      await this.#step(c, saga, idx, "state = 'SKIPPED', finish_time = now()");
      await this.#announce(c, saga, idx);
    });
  }

  /** The action failed for good: the saga compensates, keeping the step's error as its own. */
  failAction(saga: SagaRow, idx: number, name: string, error: Uint8Array) {
    return this.#tx(saga, async (c) => {
      await this.#step(c, saga, idx, "state = 'FAILED', error = $3, finish_time = now()", [
        Buffer.from(error),
      ]);
      await c.query("UPDATE sagas SET state = 'COMPENSATING', error = $2, failed_step = $3 WHERE id = $1", [
        saga.id,
        Buffer.from(error),
        name,
      ]);
      await this.#announce(c, saga, idx);
    });
  }

  beginCompensation(saga: SagaRow, idx: number, from: StepStateName) {
    const attempt = from === "SUCCEEDED" ? "1" : "attempt + 1";
    return this.#tx(saga, (c) => this.#step(c, saga, idx, `state = 'COMPENSATING', attempt = ${attempt}`));
  }

  completeCompensation(saga: SagaRow, idx: number) {
    return this.#tx(saga, async (c) => {
      await this.#step(c, saga, idx, "state = 'COMPENSATED', error = NULL, finish_time = now()");
      await this.#announce(c, saga, idx);
    });
  }

  /** A compensation kept failing: the saga is FAILED and an operator must look. */
  failCompensation(saga: SagaRow, idx: number, name: string, error: Uint8Array) {
    return this.#tx(saga, async (c) => {
      await this.#step(c, saga, idx, "state = 'COMPENSATION_FAILED', error = $3, finish_time = now()", [
        Buffer.from(error),
      ]);
      await c.query("UPDATE sagas SET state = 'FAILED', finish_time = now() WHERE id = $1", [saga.id]);
      await this.#announce(c, saga, idx);
      await stage(c, this.core.subjects, this.#cause(saga), {
        schema: SagaFailedSchema,
        payload: create(SagaFailedSchema, {
          sagaId: saga.id,
          sagaType: saga.sagaType,
          projectId: saga.projectId,
          failedStep: name,
          error: statusOf(error),
        }),
        aggregateType: "saga",
        aggregateId: saga.id,
        projectId: saga.projectId,
      });
    });
  }

  finishCompensated(saga: SagaRow) {
    return this.#tx(saga, async (c) => {
      await c.query(
        `UPDATE saga_steps SET state = 'SKIPPED', finish_time = now()
          WHERE saga_id = $1 AND state IN ('PENDING', 'RUNNING')`,
        [saga.id],
      );
      await c.query("UPDATE sagas SET state = 'COMPENSATED', finish_time = now() WHERE id = $1", [saga.id]);
      await stage(c, this.core.subjects, this.#cause(saga), {
        schema: SagaCompensatedSchema,
        payload: create(SagaCompensatedSchema, {
          sagaId: saga.id,
          sagaType: saga.sagaType,
          projectId: saga.projectId,
          failedStep: saga.failedStep,
          error: statusOf(saga.error),
        }),
        aggregateType: "saga",
        aggregateId: saga.id,
        projectId: saga.projectId,
      });
    });
  }
}
