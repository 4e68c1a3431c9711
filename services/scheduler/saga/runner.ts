import { randomUUID } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import { StartWorkItemCreationRequestSchema } from "../../../gen/codex/scheduler/v1/saga_pb.js";
import { backoffDelay } from "../../../mesh/resilience/retry.js";
import type { Core } from "../core.js";
import { isTerminal, nextMove, type StepName } from "../domain/saga-plan.js";
import { isRetryable } from "../errors.js";
import { WakeableLoop } from "../queue/loop.js";
import { claimOrphans, getSaga, releaseLeases, renewLeases, type SagaRow, stepsOf } from "../store/sagas.js";
import { LostOwnership, SagaStore } from "./persist.js";
import { statusBytes } from "./saga-message.js";
import { type StepContext, type StepDefinition, WORK_ITEM_CREATION_STEPS } from "./steps.js";

/** Test seams: run before and after each step's action (e.g. to block, fail or crash there). */
export interface SagaHooks {
  beforeAction?(saga: SagaRow, step: StepName, signal: AbortSignal): Promise<void>;
  afterAction?(saga: SagaRow, step: StepName, signal: AbortSignal): Promise<void>;
}

export interface SagaRunnerOptions {
  leaseMs: number;
  recoveryIntervalMs: number;
  stepAttempts: number;
  retryBaseMs: number;
  retryCapMs: number;
  hooks?: SagaHooks | undefined;
}

/**
 * Runs sagas: those this replica starts, and (recovery) every unfinished saga whose owner's
 * lease lapsed, which after a crash is all of the dead replica's. Each step's state is
 * persisted before and after its action; retryable failures are retried with full-jitter
 * backoff, anything else compensates the completed steps in reverse. Stopping aborts the
 * steps in flight and hands the sagas back (lease released), so a successor resumes them.
 */
export class SagaRunner {
  readonly owner = randomUUID();
  readonly #core: Core;
  readonly #o: SagaRunnerOptions;
  readonly #store: SagaStore;
  readonly #active = new Map<string, Promise<void>>();
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #stopping = new AbortController();
  readonly #recovery: WakeableLoop;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(core: Core, o: SagaRunnerOptions) {
    this.#core = core;
    this.#o = o;
    this.#store = new SagaStore(core, this.owner, o.leaseMs);
    this.#recovery = new WakeableLoop(
      "saga-recovery",
      core.logger,
      () => this.#recover(),
      o.recoveryIntervalMs,
    );
  }

  async start(): Promise<void> {
    await this.#recovery.start();
    this.#heartbeat = setInterval(() => {
      renewLeases(this.#core.pool, this.owner, [...this.#active.keys()], this.#o.leaseMs).catch(
        (err: unknown) => this.#core.logger.warn({ err }, "saga lease renewal failed"),
      );
    }, this.#o.leaseMs / 3);
    this.#heartbeat.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#heartbeat);
    this.#stopping.abort();
    await this.#recovery.stop();
    await Promise.allSettled([...this.#active.values()]);
    await releaseLeases(this.#core.pool, this.owner);
  }

  /** Starts running a saga this replica owns (no-op if it already runs here). */
  launch(id: string): void {
    if (this.#active.has(id) || this.#stopping.signal.aborted) return;
    const run = this.#run(id)
      .catch((err: unknown) => {
        if (err instanceof LostOwnership || this.#stopping.signal.aborted) return;
        this.#core.logger.error({ err, sagaId: id }, "saga runner failed; recovery will resume the saga");
      })
      .finally(() => {
        this.#active.delete(id);
        this.#notify(id);
      });
    this.#active.set(id, run);
  }

  /** Resolves when the saga reached a final state or `timeoutMs` passed (whichever first). */
  async waitFinished(id: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const saga = await getSaga(this.#core.pool, id);
      if (!saga || isTerminal(saga.state)) return;
      await new Promise<void>((resolve) => {
        const set = this.#waiters.get(id) ?? new Set();
        const done = () => {
          clearTimeout(timer);
          set.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(200, Math.max(0, deadline - Date.now())));
        set.add(done);
        this.#waiters.set(id, set);
      });
    }
  }

  #notify(id: string): void {
    for (const w of this.#waiters.get(id) ?? []) w();
    this.#waiters.delete(id);
  }

  async #recover(): Promise<number> {
    const ids = await claimOrphans(this.#core.pool, this.owner, this.#o.leaseMs, 20);
    for (const id of ids) this.launch(id);
    return ids.length === 20 ? 0 : this.#o.recoveryIntervalMs;
  }

  async #run(id: string): Promise<void> {
    const signal = this.#stopping.signal;
    for (;;) {
      if (signal.aborted) return;
      const saga = await getSaga(this.#core.pool, id);
      if (!saga || saga.owner !== this.owner) return;
      const steps = (await stepsOf(this.#core.pool, [id])).get(id) ?? [];
      const move = nextMove(
        saga.state,
        steps.map((s) => s.state),
      );
      const ctx: StepContext = {
        core: this.#core,
        saga,
        request: fromBinary(StartWorkItemCreationRequestSchema, saga.request),
        signal,
      };
      if (move.kind === "none") return;
      if (move.kind === "finish") {
        if (move.state === "COMPENSATED") await this.#store.finishCompensated(saga);
        return;
      }
      const def = WORK_ITEM_CREATION_STEPS[move.idx] as StepDefinition;
      if (move.kind === "run") await this.#runStep(ctx, move.idx, def);
      else await this.#compensateStep(ctx, move.idx, def, steps[move.idx]?.state === "SUCCEEDED");
      this.#notify(id);
    }
  }

  async #runStep(ctx: StepContext, idx: number, def: StepDefinition): Promise<void> {
    const { saga, signal } = ctx;
    if (def.skip?.(ctx)) return this.#store.skip(saga, idx);
    for (let attempt = 1; ; attempt++) {
      await this.#store.beginAction(saga, idx);
      try {
        await this.#o.hooks?.beforeAction?.(saga, def.name, signal);
        const out = await def.run(ctx);
        await this.#o.hooks?.afterAction?.(saga, def.name, signal);
        if (signal.aborted) return;
        return await this.#store.completeAction(saga, idx, out, idx === WORK_ITEM_CREATION_STEPS.length - 1);
      } catch (err) {
        if (signal.aborted || err instanceof LostOwnership) throw err;
        const status = statusBytes(err);
        if (!isRetryable(err) || attempt >= this.#o.stepAttempts)
          return this.#store.failAction(saga, idx, def.name, status);
        await this.#store.recordError(saga, idx, status);
        await this.#sleep(attempt, signal);
      }
    }
  }

  async #compensateStep(ctx: StepContext, idx: number, def: StepDefinition, first: boolean): Promise<void> {
    const { saga, signal } = ctx;
    const reason = `saga ${saga.id} compensated: ${saga.failedStep} failed`;
    for (let attempt = 1; ; attempt++) {
      await this.#store.beginCompensation(saga, idx, first && attempt === 1 ? "SUCCEEDED" : "COMPENSATING");
      try {
        await def.compensate?.(ctx, reason);
        if (signal.aborted) return;
        return await this.#store.completeCompensation(saga, idx);
      } catch (err) {
        if (signal.aborted || err instanceof LostOwnership) throw err;
        if (!isRetryable(err) || attempt >= this.#o.stepAttempts) {
          return this.#store.failCompensation(saga, idx, def.name, statusBytes(err));
        }
        await this.#sleep(attempt, signal);
      }
    }
  }

  #sleep(attempt: number, signal: AbortSignal): Promise<void> {
    const ms = backoffDelay(attempt - 1, this.#o.retryBaseMs, this.#o.retryCapMs);
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
  }
}
