import type { Registry } from "@bufbuild/protobuf";
import type pg from "pg";
import type { SecretBox } from "../../../mesh/crypto/secret-box.js";
import { decodeEnvelope } from "../../../mesh/events/envelope.js";
import type { StopContext } from "../../../mesh/lifecycle.js";
import type { Logger } from "../../../mesh/logging.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import { SendAborted, type Sender, type SendResult } from "../channels/types.js";
import { nextStep, type RetryPolicy } from "../domain/retry-policy.js";
import type { EventStager } from "../events/emit.js";
import {
  type AttemptRecord,
  type ClaimedDelivery,
  claimDue,
  recordAttempt,
  releaseClaim,
} from "../store/deliveries.js";
import { prepareNotification, targetOf } from "./prepare.js";

export interface DeliveryWorkerOptions {
  pool: pg.Pool;
  sender: Sender;
  registry: Registry;
  box: SecretBox;
  stager: EventStager;
  policy: RetryPolicy;
  leaseMs: number;
  pollMs: number;
  concurrency: number;
  consoleUrl?: string | undefined;
  logger: Logger;
  /** Observes each recorded attempt (metrics). */
  onAttempt?: (channel: string, outcome: AttemptRecord["outcome"], latencyMs: number) => void;
}

export type WorkerState = "INITIALIZED" | "RUNNING" | "DRAINING" | "STOPPED";

/**
 * Sends due deliveries: claim (leased, SKIP LOCKED) → render → send → record the attempt and
 * schedule the next one or dead-letter, with the result's events, in one transaction.
 *
 * Shutdown: stop claiming, let in-flight sends finish until the stop deadline, then abort them
 * and hand their claims back unrecorded. A send that reached the receiver but was not recorded
 * is sent again later with the same X-Codex-Delivery-Id — at-least-once to the receiver,
 * exactly one recorded result per attempt.
 */
export class DeliveryWorker {
  #state: WorkerState = "INITIALIZED";
  readonly #inFlight = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #wake: (() => void) | undefined;
  #woken = false;
  #loop: Promise<void> | undefined;

  constructor(private readonly o: DeliveryWorkerOptions) {}

  get state(): WorkerState {
    return this.#state;
  }

  async start(): Promise<void> {
    this.#state = "RUNNING";
    this.#loop = this.#run();
  }

  /** Looks for due deliveries now (called after new deliveries commit). */
  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }

  async stop(ctx?: StopContext): Promise<void> {
    if (this.#state !== "RUNNING") {
      this.#state = "STOPPED";
      return;
    }
    this.#state = "DRAINING";
    this.#wake?.();
    const onDeadline = () => this.#abort.abort();
    ctx?.signal.addEventListener("abort", onDeadline, { once: true });
    if (ctx?.signal.aborted) onDeadline();
    await this.#loop;
    await Promise.allSettled([...this.#inFlight]);
    ctx?.signal.removeEventListener("abort", onDeadline);
    this.#state = "STOPPED";
  }

  async #run(): Promise<void> {
    while (this.#state === "RUNNING") {
      const free = this.o.concurrency - this.#inFlight.size;
      let claimed: ClaimedDelivery[] = [];
      if (free > 0) {
        try {
          claimed = await claimDue(this.o.pool, free, this.o.leaseMs);
        } catch (err) {
          this.o.logger.warn({ err }, "claiming deliveries failed; retrying");
        }
      }
      for (const d of claimed) {
        const work = this.#process(d).finally(() => {
          this.#inFlight.delete(work);
          this.#wake?.();
        });
        this.#inFlight.add(work);
      }
      // A full batch means more may be due: go again as soon as a slot frees.
      if (claimed.length > 0 && claimed.length === free) await this.#sleep(this.o.pollMs, true);
      else await this.#sleep(this.o.pollMs, false);
    }
  }

  #sleep(ms: number, untilSlot: boolean): Promise<void> {
    if (this.#woken && !untilSlot) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        this.#woken = false;
        done();
      };
    });
  }

  async #process(d: ClaimedDelivery): Promise<void> {
    const sub = d.subscription;
    let result: SendResult;
    try {
      const n = prepareNotification(
        sub,
        decodeEnvelope(d.envelope),
        d.alert,
        d.id,
        this.o.registry,
        this.o.consoleUrl,
      );
      result = await this.o.sender.send(targetOf(sub, this.o.box), n, this.#abort.signal);
    } catch (err) {
      if (err instanceof SendAborted) {
        await releaseClaim(this.o.pool, d.id, d.claimToken).catch(() => {});
        return;
      }
      // Undecryptable credential or unrenderable event: retrying cannot help; park it.
      this.o.logger.error({ err, deliveryKey: d.id, subscriptionId: sub.id }, "delivery cannot be prepared");
      result = {
        ok: false,
        statusCode: 0,
        error: "delivery could not be prepared (see service logs)",
        retryable: false,
        latencyMs: 0,
      };
    }
    const attemptNo = d.attempts + 1;
    const step = nextStep(this.o.policy, attemptNo - d.seriesStart + 1, result);
    const rec: AttemptRecord =
      step.kind === "succeeded"
        ? { outcome: "succeeded", statusCode: result.statusCode, latencyMs: result.latencyMs, error: "" }
        : step.kind === "retry"
          ? {
              outcome: "failed",
              statusCode: result.statusCode,
              latencyMs: result.latencyMs,
              error: result.error,
              retryDelayMs: step.delayMs,
            }
          : {
              outcome: "dead_lettered",
              statusCode: result.statusCode,
              latencyMs: result.latencyMs,
              error: result.error,
            };
    try {
      await withTransaction(this.o.pool, async (c) => {
        const r = await recordAttempt(c, d, rec);
        if (!r.recorded) {
          this.o.logger.warn({ deliveryKey: d.id }, "lease lost before recording; the new owner records");
          return;
        }
        const ref = { id: sub.id, projectId: sub.projectId };
        if (rec.outcome === "succeeded") {
          await this.o.stager.delivered(c, ref, {
            deliveryId: r.attemptId,
            deliveryKey: d.id,
            eventId: d.eventId,
            eventType: d.eventType,
            attempt: r.attempt,
            statusCode: rec.statusCode,
            latencyMs: rec.latencyMs,
          });
        } else if (rec.outcome === "dead_lettered" && r.deadLetterId !== undefined) {
          await this.o.stager.deadLettered(c, ref, {
            deadLetterId: r.deadLetterId,
            deliveryKey: d.id,
            eventId: d.eventId,
            eventType: d.eventType,
            attempts: r.attempt,
            lastStatusCode: rec.statusCode,
            lastError: rec.error,
          });
        }
      });
      this.o.onAttempt?.(sub.channel.type, rec.outcome, rec.latencyMs);
    } catch (err) {
      // The lease expires and the delivery is tried again: the receiver dedupes on the delivery id.
      this.o.logger.warn({ err, deliveryKey: d.id }, "recording a delivery attempt failed");
    }
  }
}
