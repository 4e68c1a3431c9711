/**
 * Everything the agent sends on the Connect stream, in one place, with the two delivery rules
 * the contract needs:
 *
 * - Reliable messages (run status, logs, info requests, completions, rejections) are numbered
 *   per stream (`message_seq` from 1), kept until the manager's cumulative Ack covers them, and
 *   resent — renumbered — on the next stream after a reconnect (the manager ignores duplicates).
 * - Heartbeats are never queued: one slot holds the latest beat, a newer beat replaces an unsent
 *   one, and the slot is served before any queued message, so a backlog of logs cannot delay
 *   liveness and a stalled stream cannot pile beats up. They are not resent either: a stale beat
 *   is worthless, the next one carries the current leases.
 *
 * Nothing but the hello is sent until the worker has processed the Welcome (`markWelcomed`):
 * runs the manager refused to resume are dropped first, so their messages never go out.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  type AgentHeartbeatSchema,
  type ConnectRequest,
  ConnectRequestSchema,
} from "../gen/codex/agentmanager/v1/connect_pb.js";

type RequestInit = MessageInitShape<typeof ConnectRequestSchema>;
/** One agent message without its sequence number, e.g. `{ case: "logs", value: {...} }`. */
export type Payload = NonNullable<RequestInit["message"]>;
export type HeartbeatInit = MessageInitShape<typeof AgentHeartbeatSchema>;
export type HelloInit = Extract<Payload, { case: "hello" }>["value"];

/** A reliable message and what to do when the manager acknowledges or refuses it. */
export interface Entry {
  payload: Payload;
  /** Run the message concerns; dropped with the run when its lease is lost. */
  runId?: string;
  /** Log bytes it carries, for the backlog bound. */
  logBytes?: number;
  onAcked?: () => void;
}

interface Generation {
  seq: bigint;
  welcomed: boolean;
  ended: boolean;
  closing: boolean;
}

export class Outbound {
  #pending: Entry[] = [];
  #unacked: { seq: bigint; entry: Entry }[] = [];
  #beat: Omit<HeartbeatInit, "seq"> | undefined;
  #beatSeq = 0n;
  #gen: Generation | undefined;
  #wake: (() => void) | undefined;
  #flushWaiters: (() => void)[] = [];
  #logBytes = 0;

  /** Log bytes queued or awaiting acknowledgement. */
  get logBytes(): number {
    return this.#logBytes;
  }

  /** Reliable messages queued or awaiting acknowledgement. */
  get backlog(): number {
    return this.#pending.length + this.#unacked.length;
  }

  /** Queues a reliable message. */
  enqueue(entry: Entry): void {
    this.#pending.push(entry);
    this.#logBytes += entry.logBytes ?? 0;
    this.#poke();
  }

  /** Offers a heartbeat; replaces a beat not yet sent. Its `seq` is assigned per stream. */
  offerHeartbeat(beat: Omit<HeartbeatInit, "seq">): void {
    this.#beat = beat;
    this.#poke();
  }

  /** Whether a beat is waiting to be sent (tests, diagnostics). */
  get heartbeatPending(): boolean {
    return this.#beat !== undefined;
  }

  /** Applies a cumulative Ack of the current stream. */
  ack(ackedSeq: bigint): void {
    while (this.#unacked.length > 0 && this.#unacked[0]!.seq <= ackedSeq) {
      const { entry } = this.#unacked.shift()!;
      this.#logBytes -= entry.logBytes ?? 0;
      entry.onAcked?.();
    }
    this.#checkFlushed();
  }

  /** The reliable message sent with `seq` on the current stream and not yet acknowledged. */
  sentAt(seq: bigint): Entry | undefined {
    return this.#unacked.find((u) => u.seq === seq)?.entry;
  }

  /** Forgets every message of a run whose lease is gone (nothing of it may reach the manager). */
  dropRun(runId: string): void {
    const keep = (e: Entry) => {
      if (e.runId !== runId) return true;
      this.#logBytes -= e.logBytes ?? 0;
      return false;
    };
    this.#pending = this.#pending.filter(keep);
    this.#unacked = this.#unacked.filter((u) => keep(u.entry));
    this.#checkFlushed();
  }

  /**
   * Starts a new stream: what the previous one sent without acknowledgement goes back to the
   * front of the queue. Returns the messages to write, hello first.
   */
  open(hello: HelloInit): AsyncIterable<ConnectRequest> {
    this.endStream();
    this.#pending = [...this.#unacked.map((u) => u.entry), ...this.#pending];
    this.#unacked = [];
    this.#beat = undefined;
    this.#beatSeq = 0n;
    const gen: Generation = { seq: 0n, welcomed: false, ended: false, closing: false };
    this.#gen = gen;
    return this.#generate(gen, hello);
  }

  /** The manager accepted the session: start sending queued messages and heartbeats. */
  markWelcomed(): void {
    if (this.#gen) this.#gen.welcomed = true;
    this.#poke();
  }

  /** The current stream is gone: stop its writer. */
  endStream(): void {
    if (this.#gen) this.#gen.ended = true;
    this.#poke();
  }

  /** Half-closes the current stream once every queued message was written. */
  closeWhenDrained(): void {
    if (this.#gen) this.#gen.closing = true;
    this.#poke();
  }

  /** Resolves once nothing is queued or awaiting acknowledgement. */
  whenFlushed(): Promise<void> {
    if (this.backlog === 0) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push(resolve));
  }

  async *#generate(gen: Generation, hello: HelloInit) {
    yield this.#stamp(gen, { case: "hello", value: hello });
    for (;;) {
      if (gen.ended) return;
      if (gen.welcomed && this.#beat) {
        const beat = this.#beat;
        this.#beat = undefined;
        this.#beatSeq += 1n;
        yield this.#stamp(gen, {
          case: "heartbeat",
          value: { ...beat, seq: this.#beatSeq } as HeartbeatInit,
        });
        continue;
      }
      const next = gen.welcomed ? this.#pending.shift() : undefined;
      if (next) {
        const msg = this.#stamp(gen, next.payload);
        this.#unacked.push({ seq: msg.messageSeq, entry: next });
        yield msg;
        continue;
      }
      if (gen.closing) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  #stamp(gen: Generation, payload: Payload): ConnectRequest {
    gen.seq += 1n;
    return create(ConnectRequestSchema, { messageSeq: gen.seq, message: payload });
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #checkFlushed(): void {
    if (this.backlog !== 0) return;
    const waiters = this.#flushWaiters;
    this.#flushWaiters = [];
    for (const w of waiters) w();
  }
}
