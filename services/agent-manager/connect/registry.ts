/**
 * The Connect sessions open on this replica, one per agent, and the routing of notices to
 * them: a newer stream replaces an older one (ABORTED, STREAM_REPLACED) here and on other
 * replicas; cancellations, answers, drains, revocations and offline findings reach the session
 * of the agent concerned wherever they happened.
 */

import { unavailable } from "../../../mesh/errors.js";
import type { Logger } from "../../../mesh/logging.js";
import { sessionInvalid, streamReplaced } from "../errors.js";
import type { Notice, Notifier } from "../liveness/notifier.js";
import type { Session } from "./session.js";

export class SessionRegistry {
  readonly #byAgent = new Map<string, Session>();

  constructor(
    private readonly notifier: Notifier,
    private readonly logger: Logger,
    private readonly onCount: (n: number) => void = () => {},
  ) {
    notifier.on((n) => this.#route(n));
  }

  get size(): number {
    return this.#byAgent.size;
  }

  get(agentId: string): Session | undefined {
    return this.#byAgent.get(agentId);
  }

  opened(session: Session): void {
    const agentId = session.agent?.id;
    if (!agentId) return;
    const previous = this.#byAgent.get(agentId);
    this.#byAgent.set(agentId, session);
    this.onCount(this.#byAgent.size);
    if (previous && previous !== session) previous.close(streamReplaced(agentId));
    this.notifier.emit({ t: "session", agentId, sessionId: session.id });
  }

  closed(session: Session): void {
    const agentId = session.agent?.id;
    if (agentId && this.#byAgent.get(agentId) === session) {
      this.#byAgent.delete(agentId);
      this.onCount(this.#byAgent.size);
    }
  }

  /** Closes every session (shutdown): agents reconnect elsewhere and resume their runs. */
  closeAll(): void {
    for (const s of this.#byAgent.values())
      s.close(unavailable("the agent manager is shutting down; reconnect", 1_000));
  }

  #route(n: Notice): void {
    if (!("agentId" in n)) return;
    const session = this.#byAgent.get(n.agentId);
    if (!session) return;
    switch (n.t) {
      case "session":
        if (n.sessionId !== session.id) session.close(streamReplaced(n.agentId));
        return;
      case "cancel":
        session.cancel(n.runId, BigInt(n.token), n.reason);
        return;
      case "assigned":
        session
          .adopt(n.runId)
          .catch((err: unknown) => this.logger.warn({ err, runId: n.runId }, "pinned run not pushed"));
        return;
      case "answer":
        session
          .answers(n.runId)
          .catch((err: unknown) => this.logger.warn({ err, runId: n.runId }, "answer delivery failed"));
        return;
      case "drain":
        if (n.draining) session.drain(n.reason, n.deadlineMs);
        return;
      case "offline":
        session.close(
          unavailable("no heartbeat within the allowed intervals: the agent is OFFLINE; reconnect"),
        );
        return;
      case "revoked":
        if (session.agent?.session_id !== n.sessionId) {
          session.close(sessionInvalid("the agent was re-registered or deregistered: register again"));
        }
        return;
      default:
        return;
    }
  }
}
