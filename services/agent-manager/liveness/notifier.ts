/**
 * Notifications between the parts of the manager, and between its replicas.
 *
 * Why: an agent's stream lives in one replica, but what concerns it (a cancellation, an answer,
 * a drain, a run requeued elsewhere) may happen in any replica. Every notice is handled locally
 * at once and published on a Redis channel for the other replicas; each replica ignores its own
 * messages. Notices are hints that make things fast, never the source of truth: Postgres is,
 * and periodic resyncs repair a notice lost with a Redis hiccup.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "../../../mesh/logging.js";

/** A PENDING run, as the dispatcher queues it. */
export interface PendingNotice {
  id: string;
  priority: number;
  createdMs: number;
  selector: Record<string, string>;
  tools: { name: string; version: string }[];
  rejectedBy: string[];
}

export type Notice =
  | { t: "pending"; run: PendingNotice }
  | { t: "taken"; runId: string }
  | { t: "assigned"; agentId: string; runId: string }
  | { t: "released"; agentId: string; runId: string }
  | { t: "cancel"; agentId: string; runId: string; token: string; reason: string }
  | { t: "answer"; agentId: string; runId: string; infoRequestId: string }
  | { t: "drain"; agentId: string; draining: boolean; reason: string; deadlineMs: number | null }
  | { t: "offline"; agentId: string }
  | { t: "session"; agentId: string; sessionId: string }
  | { t: "revoked"; agentId: string; sessionId: string }
  | { t: "logs"; runId: string };

type Handler = (n: Notice) => void;

export class Notifier {
  readonly replica = randomUUID();
  readonly #handlers: Handler[] = [];
  #sub: Redis | undefined;

  constructor(
    private readonly redis: Redis | undefined,
    private readonly channel: string,
    private readonly logger: Logger,
  ) {}

  on(handler: Handler): void {
    this.#handlers.push(handler);
  }

  /** Handles a notice here and, unless `scope` is "local", tells the other replicas. */
  emit(n: Notice, scope: "all" | "local" = "all"): void {
    this.#deliver(n);
    if (this.redis && scope === "all") {
      this.redis.publish(this.channel, JSON.stringify({ r: this.replica, n })).catch((err: unknown) => {
        this.logger.warn({ err, notice: n.t }, "could not publish a notice to other replicas");
      });
    }
  }

  async start(): Promise<void> {
    if (!this.redis) return;
    this.#sub = this.redis.duplicate();
    this.#sub.on("error", (err: Error) => this.logger.warn({ err }, "notice subscriber connection error"));
    this.#sub.on("message", (_channel: string, raw: string) => {
      try {
        const msg = JSON.parse(raw) as { r: string; n: Notice };
        if (msg.r !== this.replica) this.#deliver(msg.n);
      } catch (err) {
        this.logger.warn({ err }, "malformed notice ignored");
      }
    });
    await this.#sub.subscribe(this.channel);
  }

  async stop(): Promise<void> {
    const sub = this.#sub;
    this.#sub = undefined;
    if (sub) sub.disconnect();
  }

  #deliver(n: Notice): void {
    for (const h of this.#handlers) {
      try {
        h(n);
      } catch (err) {
        this.logger.error({ err, notice: n.t }, "notice handler failed");
      }
    }
  }
}
