import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerMessages,
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { type NatsConnection, nanos, type Subscription } from "@nats-io/transport-node";
import { publishDeadLetter } from "./dead-letter.js";
import { type ConsumedMessage, PermanentError, toConsumedMessage } from "./message.js";
import { subjectMatches } from "./subjects.js";

export { type ConsumedMessage, PermanentError } from "./message.js";

/** Options for {@link DurableConsumer}. */
export interface DurableConsumerOptions {
  nc: NatsConnection;
  /** Stream holding every filter subject, e.g. `subjectsFor(prefix).streams.events`. */
  stream: string;
  /** Durable name: replicas sharing it share the work; the server remembers progress under it. */
  durable: string;
  /** Subjects to receive, wildcards allowed; all must belong to `stream`. */
  filterSubjects: readonly string[];
  /** Where to park failed messages, e.g. `subjectsFor(prefix).dlq(durable)`. */
  dlqSubject: string;
  /** Resolving acks the message; throwing retries it (or dead-letters a {@link PermanentError}). */
  handler: (msg: ConsumedMessage) => Promise<void>;
  /** Deliveries before a failing message is dead-lettered (default 5). */
  maxDeliver?: number;
  /** Time the server waits for an ack before redelivering (default 30 s). */
  ackWaitMs?: number;
  /** Retry delay after the n-th failure: min(initialMs * 2^(n-1), maxMs) (default 1 s .. 60 s). */
  retryBackoff?: { initialMs: number; maxMs: number };
  /**
   * Messages handled at once (default 1: one at a time, in delivery order). A failed message is
   * retried after its backoff while later ones proceed, so order holds only while handlers succeed.
   */
  concurrency?: number;
  /** Messages pulled ahead of the handler (default 4 x concurrency; 2 x maxBatch in batch mode). */
  prefetch?: number;
  /**
   * Batch mode: handles many messages at once (one transaction for all, say); resolving acks
   * them all, except those it resolves with: messages it could not handle (an undecodable one,
   * say), handed to `handler` one at a time. Throwing hands every message of the batch to
   * `handler`. Either way retries, backoff and dead-lettering stay per message. Batches run one
   * at a time in delivery order; each holds what arrived while the previous one ran, up to
   * `maxBatch`. `concurrency` is ignored. Handlers must be idempotent (the fallback may repeat
   * what a failed batch did).
   */
  batchHandler?: (msgs: ConsumedMessage[]) => Promise<void> | Promise<readonly ConsumedMessage[]>;
  /** Largest batch handed to `batchHandler` (default 256). */
  maxBatch?: number;
  /**
   * Batch mode: how long a batch that is not full may wait for more messages, counted from its
   * first one (default 0: start at once). Trades that much latency for far fewer transactions
   * when events trickle in — each batch has a fixed cost in round trips.
   */
  batchLingerMs?: number;
  /** How long stop() waits for in-flight handlers (default 10 s). */
  stopTimeoutMs?: number;
  /** Handler failures, DLQ publish failures and consume-loop errors; the consumer keeps going. */
  onError?: (err: unknown, msg?: ConsumedMessage) => void;
}

/** Lifecycle of a consumer; DRAINING = no new work taken, in-flight handlers finishing. */
export type ConsumerState = "INITIALIZED" | "RUNNING" | "DRAINING" | "STOPPED";

/**
 * Lifetime of one pull request. The server keeps a pull request open until it expires even after
 * the client unsubscribed (NATS 2.9 cannot cancel one), and messages it routes there are lost
 * until `ack_wait`. Short pulls bound how long a stopped consumer keeps swallowing messages.
 */
const PULL_EXPIRES_MS = 5_000;

/**
 * Buffered messages a stopping consumer never started are NAKed with this delay, so they are
 * redelivered only after our last pull request expired, to a live consumer. An immediate NAK
 * would hand them straight back to the dead pull request (and NATS 2.9 then even delivers the
 * last one twice).
 */
const HAND_BACK_DELAY_MS = PULL_EXPIRES_MS + 1_000;

/** Server ≥ 2.10 accepts several filter subjects on one consumer. */
function supportsMultiFilter(nc: NatsConnection): boolean {
  const [major = 0, minor = 0] = (nc.info?.version ?? "0.0.0").split(".").map(Number);
  return major > 2 || (major === 2 && minor >= 10);
}

/**
 * The inbox subscription behind a consume() iterator: a public field of nats.js's
 * PullConsumerMessagesImpl that the `ConsumerMessages` type does not declare.
 */
function inboxOf(messages: ConsumerMessages): Subscription | undefined {
  const sub = (messages as { sub?: Partial<Subscription> }).sub;
  return typeof sub?.drain === "function" &&
    typeof sub.isClosed === "function" &&
    typeof sub.isDraining === "function"
    ? (sub as Subscription)
    : undefined;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    const cancel = () => {
      clearTimeout(timer);
      resolve();
    };
    signal.addEventListener("abort", cancel, { once: true });
  });

/**
 * A durable, explicitly acked JetStream pull consumer with bounded retries and a DLQ.
 *
 * Why: every event consumer in the mesh needs the same at-least-once discipline: ack only after
 * the handler succeeded, back off exponentially between retries (NAK with delay, so a failing
 * message does not spin), and after `maxDeliver` attempts (or a {@link PermanentError}) copy the
 * message to the DLQ and TERM it so it stops blocking the consumer. Publishing to the DLQ is
 * retried until it succeeds, because the server will not redeliver after `maxDeliver`.
 *
 * NATS 2.9 cannot filter one consumer on several subjects; there the consumer reads the whole
 * stream and acks non-matching messages itself (and `pending()` counts them too).
 */
export class DurableConsumer {
  #state: ConsumerState = "INITIALIZED";
  readonly #o: Required<Omit<DurableConsumerOptions, "onError" | "prefetch" | "batchHandler">> & {
    prefetch: number;
    batchHandler: DurableConsumerOptions["batchHandler"];
    batchLingerMs: number;
  };
  readonly #onError: (err: unknown, msg?: ConsumedMessage) => void;
  readonly #clientFilter: readonly string[] | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #stopping = new AbortController();
  #js: JetStreamClient | undefined;
  #jsm: JetStreamManager | undefined;
  #consumer: Consumer | undefined;
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> | undefined;
  #slotFreed: (() => void) | undefined;
  /** Batch mode: messages received and not yet handed to a batch. */
  #buffer: JsMsg[] = [];
  #batchRunning = false;
  #flushScheduled = false;
  /** When the oldest buffered message arrived (performance.now()), for the linger. */
  #firstBufferedAt = 0;
  #lingerTimer: NodeJS.Timeout | undefined;
  #fire: (() => void) | undefined;

  constructor(opts: DurableConsumerOptions) {
    if (opts.filterSubjects.length === 0) throw new Error(`consumer ${opts.durable}: no filter subjects`);
    const concurrency = opts.batchHandler ? 1 : Math.max(1, opts.concurrency ?? 1);
    const maxBatch = Math.max(1, opts.maxBatch ?? 256);
    this.#o = {
      maxDeliver: 5,
      ackWaitMs: 30_000,
      retryBackoff: { initialMs: 1_000, maxMs: 60_000 },
      stopTimeoutMs: 10_000,
      ...opts,
      concurrency,
      maxBatch,
      batchHandler: opts.batchHandler,
      batchLingerMs: Math.max(0, opts.batchLingerMs ?? 0),
      prefetch: opts.prefetch ?? (opts.batchHandler ? maxBatch * 2 : concurrency * 4),
    };
    this.#onError = opts.onError ?? (() => {});
    const multi = opts.filterSubjects.length > 1;
    this.#clientFilter = multi && !supportsMultiFilter(opts.nc) ? opts.filterSubjects : undefined;
  }

  get state(): ConsumerState {
    return this.#state;
  }

  /** Creates or updates the durable on the server, then starts pulling. */
  async start(): Promise<void> {
    if (this.#state !== "INITIALIZED") throw new Error(`consumer ${this.#o.durable} already ${this.#state}`);
    this.#js = jetstream(this.#o.nc);
    this.#jsm = await jetstreamManager(this.#o.nc);
    this.#consumer = await this.#ensure();
    this.#state = "RUNNING";
    this.#loop = this.#run();
  }

  /**
   * Stops pulling, hands back buffered messages and those still on their way to us (NAK,
   * redelivered to another replica after {@link HAND_BACK_DELAY_MS} instead of after
   * `ackWaitMs`), waits up to `stopTimeoutMs` for in-flight handlers, then returns. A handler still running after that may ack late; if it
   * never does, the server redelivers its message after `ackWaitMs`.
   */
  async stop(): Promise<void> {
    if (this.#state === "STOPPED") return;
    if (this.#state === "INITIALIZED") {
      this.#state = "STOPPED";
      return;
    }
    this.#state = "DRAINING";
    this.#stopping.abort();
    for (const m of this.#buffer.splice(0)) m.nak(HAND_BACK_DELAY_MS);
    this.#fire?.(); // a lingering batch: nothing left to start, just clear its timer
    if (this.#messages !== undefined) this.#endPulls(this.#messages);
    this.#slotFreed?.();
    const bound = new AbortController();
    const settled = Promise.all([...this.#inFlight, this.#loop]).finally(() => bound.abort());
    await Promise.race([settled, sleep(this.#o.stopTimeoutMs, bound.signal)]);
    this.#state = "STOPPED";
  }

  /** Messages not yet delivered plus delivered-but-unacked: the consumer's lag, for metrics. */
  async pending(): Promise<number> {
    if (this.#consumer === undefined) throw new Error(`consumer ${this.#o.durable} not started`);
    const info = await this.#consumer.info();
    return info.num_pending + info.num_ack_pending;
  }

  async #ensure(): Promise<Consumer> {
    const { stream, durable, filterSubjects, ackWaitMs, maxDeliver } = this.#o;
    const filter: Partial<ConsumerConfig> =
      this.#clientFilter !== undefined
        ? {}
        : filterSubjects.length === 1
          ? { filter_subject: filterSubjects[0] ?? "" }
          : { filter_subjects: [...filterSubjects] };
    const mutable = { ack_wait: nanos(ackWaitMs), max_deliver: maxDeliver, ...filter };
    const jsm = this.#jsm!;
    try {
      await jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ...mutable,
      });
    } catch (err) {
      // 10148 "consumer already exists", 10013 "consumer name already in use": settings changed.
      if (!(err instanceof JetStreamApiError && (err.code === 10148 || err.code === 10013))) throw err;
      await jsm.consumers.update(stream, durable, mutable);
    }
    return this.#js!.consumers.get(stream, durable);
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (this.#state === "RUNNING") {
      try {
        this.#messages = await this.#consumer!.consume({
          max_messages: this.#o.prefetch,
          expires: PULL_EXPIRES_MS,
        });
        if (this.#state !== "RUNNING") this.#endPulls(this.#messages);
        for await (const m of this.#messages) {
          failures = 0;
          if (this.#o.batchHandler) {
            await this.#buffered(m);
            continue;
          }
          await this.#freeSlot();
          if (this.#state !== "RUNNING") {
            m.nak(HAND_BACK_DELAY_MS);
            continue;
          }
          // Ack/nak can throw once the connection is closed; report it, never reject into the void.
          const work = this.#process(m)
            .catch((err: unknown) => this.#onError(err))
            .finally(() => {
              this.#inFlight.delete(work);
              this.#slotFreed?.();
            });
          this.#inFlight.add(work);
        }
      } catch (err) {
        this.#onError(err);
        failures++;
      }
      if (this.#state !== "RUNNING") break;
      // The iterator ended on its own (e.g. the durable was deleted): back off, re-create, resume.
      await sleep(Math.min(1_000 * 2 ** failures, 30_000), this.#stopping.signal);
      if (this.#state !== "RUNNING") break;
      try {
        this.#consumer = await this.#ensure();
      } catch (err) {
        this.#onError(err);
        failures++;
      }
    }
  }

  /**
   * Ends the pull subscription without losing what the server already sent. `messages.stop()`
   * unsubscribes on the client at once, so a message on its way to us (sent for an open pull
   * request before the server saw the UNSUB) is dropped unacked and redelivered only after
   * `ack_wait` (30 s by default): a restarted consumer then stalls on it. Draining sends the UNSUB
   * but keeps receiving until a PING round trip shows nothing else is on its way; the server
   * routes nothing to a pull request nobody listens to, and nats.js ends a consume() iterator
   * whose subscription drained. The loop hands back (NAKs) whatever arrives meanwhile.
   */
  #endPulls(messages: ConsumerMessages): void {
    const sub = inboxOf(messages);
    if (sub?.isDraining()) return; // the connection is draining it already
    if (sub === undefined || sub.isClosed() || this.#o.nc.isClosed()) {
      messages.stop();
      return;
    }
    sub.drain().then(
      () => messages.stop(),
      (err: unknown) => {
        this.#onError(err);
        messages.stop();
      },
    );
  }

  async #freeSlot(): Promise<void> {
    while (this.#inFlight.size >= this.#o.concurrency && this.#state === "RUNNING") {
      await new Promise<void>((resolve) => {
        this.#slotFreed = resolve;
      });
    }
  }

  /** Batch mode: buffers a message (waiting while a full batch is buffered) and schedules a batch. */
  async #buffered(m: JsMsg): Promise<void> {
    if (this.#clientFilter !== undefined && !this.#clientFilter.some((f) => subjectMatches(f, m.subject))) {
      m.ack();
      return;
    }
    while (this.#buffer.length >= this.#o.maxBatch && this.#state === "RUNNING") {
      await new Promise<void>((resolve) => {
        this.#slotFreed = resolve;
      });
    }
    if (this.#state !== "RUNNING") {
      m.nak(HAND_BACK_DELAY_MS);
      return;
    }
    if (this.#buffer.length === 0) this.#firstBufferedAt = performance.now();
    this.#buffer.push(m);
    if (this.#buffer.length >= this.#o.maxBatch && this.#lingerTimer !== undefined) this.#fire?.();
    else this.#scheduleBatch();
  }

  /**
   * Starts the next batch once the current one settled, after the I/O phase (setImmediate), so
   * every message that arrived in the same socket read joins it.
   */
  #scheduleBatch(): void {
    if (this.#batchRunning || this.#flushScheduled || this.#buffer.length === 0) return;
    this.#flushScheduled = true;
    const fire = () => {
      if (this.#lingerTimer !== undefined) clearTimeout(this.#lingerTimer);
      this.#lingerTimer = undefined;
      this.#fire = undefined;
      this.#flushScheduled = false;
      if (this.#batchRunning || this.#buffer.length === 0 || this.#state !== "RUNNING") return;
      const batch = this.#buffer.splice(0, this.#o.maxBatch);
      this.#batchRunning = true;
      this.#slotFreed?.();
      const work = this.#processBatch(batch)
        .catch((err: unknown) => this.#onError(err))
        .finally(() => {
          this.#inFlight.delete(work);
          this.#batchRunning = false;
          this.#slotFreed?.();
          this.#scheduleBatch();
        });
      this.#inFlight.add(work);
    };
    const wait =
      this.#buffer.length < this.#o.maxBatch
        ? this.#o.batchLingerMs - (performance.now() - this.#firstBufferedAt)
        : 0;
    if (wait > 0) {
      this.#fire = fire;
      this.#lingerTimer = setTimeout(fire, wait);
      this.#lingerTimer.unref();
    } else setImmediate(fire);
  }

  async #processBatch(batch: JsMsg[]): Promise<void> {
    const consumed = batch.map(toConsumedMessage);
    let unhandled: ReadonlySet<ConsumedMessage>;
    try {
      unhandled = new Set((await this.#o.batchHandler!(consumed)) ?? []);
    } catch (err) {
      this.#onError(err);
      unhandled = new Set(consumed);
    }
    // Acks first, in one socket write (nats.js flushes once per microtask turn); then the rest
    // one at a time, so each gets its own retry, backoff or dead letter.
    for (const [i, m] of batch.entries()) if (!unhandled.has(consumed[i]!)) m.ack();
    for (const [i, m] of batch.entries()) if (unhandled.has(consumed[i]!)) await this.#process(m);
  }

  async #process(m: JsMsg): Promise<void> {
    const msg = toConsumedMessage(m);
    if (this.#clientFilter !== undefined && !this.#clientFilter.some((f) => subjectMatches(f, msg.subject))) {
      m.ack();
      return;
    }
    try {
      await this.#o.handler(msg);
      m.ack();
    } catch (err) {
      this.#onError(err, msg);
      if (err instanceof PermanentError || msg.deliveryCount >= this.#o.maxDeliver) {
        await this.#deadLetter(m, msg, err);
        return;
      }
      const { initialMs, maxMs } = this.#o.retryBackoff;
      m.nak(Math.min(initialMs * 2 ** (msg.deliveryCount - 1), maxMs));
    }
  }

  async #deadLetter(m: JsMsg, msg: ConsumedMessage, error: unknown): Promise<void> {
    const { dlqSubject, durable: consumer, stream } = this.#o;
    for (let attempt = 0; ; attempt++) {
      try {
        await publishDeadLetter(this.#js!, { dlqSubject, consumer, stream, message: msg, error });
        m.term(); // no reason text: NATS 2.9 ignores "+TERM <reason>" and leaves the message pending
        return;
      } catch (err) {
        this.#onError(err, msg);
        if (this.#state === "STOPPED") {
          // Shutting down: the server may not redeliver this one; it stays in the stream at msg.seq.
          m.nak();
          return;
        }
        m.working(); // keep the ack deadline from expiring while we retry
        await sleep(Math.min(100 * 2 ** attempt, 5_000), new AbortController().signal);
      }
    }
  }
}
