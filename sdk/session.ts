/**
 * One Connect stream from open to end: hello out, Welcome in (within a deadline), then every
 * manager message dispatched to the worker until the stream ends. It never throws: it resolves
 * with how the stream ended, for the worker to grade (failure.ts).
 */
import type {
  Ack,
  ConnectResponse,
  DrainNotice,
  RunCancellation,
  StreamError,
  Welcome,
} from "../gen/codex/agentmanager/v1/connect_pb.js";
import type { InfoAnswer } from "../gen/codex/agentmanager/v1/info_request_pb.js";
import type { RunAssignment } from "../gen/codex/agentmanager/v1/run_pb.js";
import { Code, ServiceError } from "../mesh/errors.js";
import type { ManagerClient } from "./connection.js";
import type { HelloInit, Outbound } from "./outbound.js";

/** What the worker does with each manager message. */
export interface SessionHandlers {
  welcome(w: Welcome): void;
  assignment(a: RunAssignment): void;
  cancel(c: RunCancellation): void;
  infoAnswer(a: InfoAnswer): void;
  drain(d: DrainNotice): void;
  ack(a: Ack): void;
  error(e: StreamError): void;
}

export interface SessionEnd {
  /** Whether the manager accepted the session (a Welcome arrived). */
  welcomed: boolean;
  /** Why it ended; undefined when the manager closed it cleanly (or we did). */
  error?: unknown;
}

export interface SessionOptions {
  client: ManagerClient;
  outbound: Outbound;
  hello: HelloInit;
  headers: Record<string, string>;
  handlers: SessionHandlers;
  /** Aborting ends the stream (worker stop). */
  signal: AbortSignal;
  welcomeTimeoutMs: number;
  /**
   * Longest silence tolerated from the manager once welcomed, ms (it acknowledges every
   * heartbeat, so silence means a dead stream that TCP has not noticed yet); read at each check.
   */
  silenceTimeoutMs: () => number;
}

/** Runs one stream to its end. */
export async function runSession(o: SessionOptions): Promise<SessionEnd> {
  const call = new AbortController();
  const onStop = () => call.abort();
  o.signal.addEventListener("abort", onStop, { once: true });
  let welcomed = false;
  let timedOut: string | undefined;
  let lastHeard = Date.now();
  const welcomeTimer = setTimeout(() => {
    timedOut = "no welcome from the agent manager";
    call.abort();
  }, o.welcomeTimeoutMs);
  const watchdog = setInterval(
    () => {
      const limit = o.silenceTimeoutMs();
      if (!welcomed || Date.now() - lastHeard <= limit) return;
      timedOut = `no message from the agent manager for ${limit} ms`;
      call.abort();
    },
    Math.max(10, Math.min(1_000, o.silenceTimeoutMs() / 4)),
  );
  try {
    const responses = o.client.connect(o.outbound.open(o.hello), { headers: o.headers, signal: call.signal });
    for await (const msg of responses) {
      lastHeard = Date.now();
      if (!welcomed) {
        if (msg.message.case !== "welcome") {
          throw new ServiceError(Code.INTERNAL, `expected welcome, got ${msg.message.case ?? "nothing"}`);
        }
        welcomed = true;
        clearTimeout(welcomeTimer);
      }
      dispatch(msg, o.handlers);
    }
    return { welcomed };
  } catch (error) {
    if (timedOut) return { welcomed, error: new ServiceError(Code.DEADLINE_EXCEEDED, timedOut) };
    // Our own stop cancels the call: that is a clean end, not a failure.
    return o.signal.aborted ? { welcomed } : { welcomed, error };
  } finally {
    clearTimeout(welcomeTimer);
    clearInterval(watchdog);
    o.signal.removeEventListener("abort", onStop);
    o.outbound.endStream();
  }
}

function dispatch(msg: ConnectResponse, h: SessionHandlers): void {
  const m = msg.message;
  switch (m.case) {
    case "welcome":
      h.welcome(m.value);
      break;
    case "assignment":
      h.assignment(m.value);
      break;
    case "cancel":
      h.cancel(m.value);
      break;
    case "infoAnswer":
      h.infoAnswer(m.value);
      break;
    case "drain":
      h.drain(m.value);
      break;
    case "ack":
      h.ack(m.value);
      break;
    case "error":
      h.error(m.value);
      break;
    case undefined:
      return;
  }
}
