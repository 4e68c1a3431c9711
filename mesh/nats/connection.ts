import { connect, type NatsConnection, type Status } from "@nats-io/transport-node";

/** Options for {@link connectNats}. */
export interface ConnectNatsOptions {
  /** One URL or a list, e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[];
  /** Connection name shown by the server (`nats server report connections`): use the service name. */
  name: string;
  /**
   * Receives every connection status change (disconnect, reconnecting, reconnect, error, ...).
   * The mesh does no logging of its own, so the service decides how to log or count these.
   */
  onStatus?: (status: Status) => void;
}

/** Base pause between reconnect attempts, plus up to {@link RECONNECT_JITTER_MS} of random jitter. */
const RECONNECT_WAIT_MS = 1_000;
const RECONNECT_JITTER_MS = 1_000;

/**
 * Connects to NATS and keeps reconnecting forever once connected.
 *
 * Why: a long-lived service must ride out NATS restarts and rolling upgrades without restarting
 * itself, so `maxReconnectAttempts` is -1; jitter keeps a fleet of replicas from reconnecting in
 * lockstep and stampeding the server. The first connect is not retried: failing fast at start-up
 * gives a clear error and lets the platform's restart policy and readiness probe do their job.
 */
export async function connectNats(opts: ConnectNatsOptions): Promise<NatsConnection> {
  const nc = await connect({
    servers: opts.servers,
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: RECONNECT_WAIT_MS,
    reconnectJitter: RECONNECT_JITTER_MS,
    // Async stack traces cost an Error (with stack) per request, ~6% of CPU for a busy
    // outbox relay; our errors carry enough context without them.
    noAsyncTraces: true,
  });
  const onStatus = opts.onStatus;
  if (onStatus !== undefined) {
    void (async () => {
      for await (const status of nc.status()) onStatus(status);
    })().catch(() => {
      // The status iterator only ends with the connection; nothing left to report.
    });
  }
  return nc;
}
