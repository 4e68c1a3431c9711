import type { DescService } from "@bufbuild/protobuf";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Redis } from "ioredis";
import type pg from "pg";
import {
  type ConfigOf,
  type ConfigSpec,
  commonConfigSpec,
  durationMs,
  int,
  loadConfig,
  str,
} from "./config.js";
import { type ClientOptions, createClient } from "./grpc/client.js";
import { GrpcServer } from "./grpc/server.js";
import type { ServiceClient } from "./grpc/types.js";
import { type Component, Lifecycle } from "./lifecycle.js";
import { createLogger, type Logger } from "./logging.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { startMetricsServer } from "./metrics-server.js";
import { connectNats } from "./nats/connection.js";
import { ensureStreams } from "./nats/streams.js";
import { type Subjects, subjectsFor } from "./nats/subjects.js";
import { OutboxRelay } from "./outbox/relay.js";
import { type Migration, migrate } from "./postgres/migrations.js";
import { createPool } from "./postgres/pool.js";
import { closeRedis, createRedis } from "./redis.js";
import { initTracing } from "./tracing.js";

/** Settings every service host reads, on top of the service's own. */
export const hostConfigSpec = {
  ...commonConfigSpec,
  /** Shared secret signing gateway-forwarded principals; required, never logged. */
  MESH_SECRET: str({ secret: true }),
  /** The service's database schema (tests give each run its own). */
  DB_SCHEMA: str({ default: "", pattern: /^([a-z_][a-z0-9_]{0,62})?$/ }),
  /** Largest accepted request message. */
  GRPC_MAX_MESSAGE_BYTES: int({ min: 1024, default: 4 * 1024 * 1024 }),
  /**
   * How long published outbox rows are kept (for inspection; JetStream is the event log). At a
   * thousand runs a second the agent manager publishes ~4,000 events a second: a day's worth
   * would be hundreds of millions of rows, so the default is a quarter of an hour.
   */
  OUTBOX_RETENTION: durationMs({ default: "15m", min: 0, max: 7 * 24 * 3_600_000 }),
  /**
   * How long the outbox relay, woken from idle, gathers rows before publishing them. Each relay
   * batch costs four round trips; at a hundred runs a second the agent manager commits a few
   * hundred small transactions a second, and 5 ms of gathering merges most of their batches.
   */
  OUTBOX_LINGER: durationMs({ default: "5ms", min: 0, max: 1_000 }),
} satisfies ConfigSpec;

/** What a service declares about itself; the host builds and wires the rest. */
export interface ServiceDefinition<S extends ConfigSpec> {
  /** One name used everywhere: folder, schema, metrics, logs, Deployment. */
  name: string;
  /** The service's own settings. */
  config?: S;
  /** Its database schema's migrations (outbox table included by the service). */
  migrations?: Migration[];
  /** Connect to NATS, provision streams and relay the outbox (needs migrations). */
  nats?: boolean;
  /** Connect to Redis. */
  redis?: boolean;
  /**
   * Registers gRPC services and background components on the host. Runs after the
   * infrastructure is up and before the server binds.
   */
  setup(host: Host<S>): Promise<void> | void;
}

/** Everything a service's setup gets: parsed config and live connections. */
export interface Host<S extends ConfigSpec> {
  readonly config: ConfigOf<typeof hostConfigSpec & S>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly server: GrpcServer;
  readonly lifecycle: Lifecycle;
  readonly schema: string;
  /** Present when the service declared migrations. */
  readonly pool: pg.Pool;
  /** Present when the service declared `nats`. */
  readonly nats: { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager; subjects: Subjects };
  /** Present when the service declared `redis`. */
  readonly redis: Redis;
  /** Adds a long-lived component (consumer, scheduler loop…) stopped before connections close. */
  addComponent(name: string, component: Component): void;
  /** A typed client to another service, with this host's metrics and mesh secret. */
  client<D extends DescService>(
    service: D,
    address: string | string[],
    opts?: Partial<ClientOptions>,
  ): ServiceClient<D>;
}

/** A started service. */
export interface RunningService<S extends ConfigSpec> {
  readonly host: Host<S>;
  readonly port: number;
  readonly address: string;
  stop(reason?: string): Promise<void>;
}

/**
 * Starts a service the same way in production (`main.ts`) and in tests: config parsed once,
 * then Postgres (migrated), NATS (streams provisioned, outbox relayed), Redis, the gRPC server
 * and metrics; health turns SERVING only when all of that is up.
 *
 * Shutdown order, written once here: health NOT_SERVING and stop accepting → drain in-flight
 * RPCs (grace time) → stop service components (consumers, loops) → stop the outbox relay →
 * close NATS, Redis and Postgres. The Lifecycle stops components in reverse order of adding,
 * so they are added in the opposite order: connections, relay, the service's own components
 * (added by its setup), metrics, and the gRPC server last.
 */
export async function startService<S extends ConfigSpec>(
  def: ServiceDefinition<S>,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<RunningService<S>> {
  const config = loadConfig({ ...hostConfigSpec, ...(def.config ?? {}) } as typeof hostConfigSpec & S, env);
  const logger = createLogger({
    service: def.name,
    level: config.LOG_LEVEL,
    version: config.SERVICE_VERSION,
  });
  initTracing({ service: def.name });
  const metrics = createMetrics({ service: def.name });
  const schema = config.DB_SCHEMA || def.name.replaceAll("-", "_");
  const lifecycle = new Lifecycle({ logger, graceMs: config.GRACE_MS });
  const server = new GrpcServer({
    logger,
    observe: metrics.rpcServer.observe.bind(metrics.rpcServer),
    principalSecret: config.MESH_SECRET,
    maxReceiveMessageBytes: config.GRPC_MAX_MESSAGE_BYTES,
  });
  const clients: { close(): void }[] = [];
  const host = {
    config,
    logger,
    metrics,
    server,
    lifecycle,
    schema,
    addComponent: (name: string, component: Component) => lifecycle.add(name, component),
    client: <D extends DescService>(
      service: D,
      address: string | string[],
      opts: Partial<ClientOptions> = {},
    ) => {
      const c = createClient(service, {
        address,
        principalSecret: config.MESH_SECRET,
        defaultPrincipal: { type: "service", id: def.name },
        observe: (m, code, s) => metrics.rpcClient.observe(service.typeName, m, code, s),
        ...opts,
      });
      clients.push(c);
      return c;
    },
  } as unknown as { -readonly [K in keyof Host<S>]: Host<S>[K] };

  // Connections, stopped last (added first).
  if (def.migrations) {
    const pool = createPool({
      url: config.DATABASE_URL,
      schema,
      max: 10,
      applicationName: def.name,
      onError: (err) => logger.warn({ err }, "idle Postgres connection failed"),
    });
    host.pool = pool;
    lifecycle.add("postgres", {
      start: async () => {
        const { applied } = await migrate(pool, { schema, migrations: def.migrations ?? [] });
        if (applied.length > 0) logger.info({ schema, applied }, "migrations applied");
      },
      stop: () => pool.end(),
    });
  }
  if (def.nats) {
    const nc = await connectNats({ servers: config.NATS_URL, name: def.name });
    const nats = {
      nc,
      js: jetstream(nc),
      jsm: await jetstreamManager(nc),
      subjects: subjectsFor(config.NATS_SUBJECT_PREFIX),
    };
    host.nats = nats;
    lifecycle.add("nats", {
      start: () => ensureStreams(nats.jsm, config.NATS_SUBJECT_PREFIX),
      stop: () => nc.drain(),
    });
  }
  if (def.redis) {
    const redis = createRedis(config.REDIS_URL, { name: def.name });
    host.redis = redis;
    lifecycle.add("redis", { stop: () => closeRedis(redis) });
  }
  lifecycle.add("clients", {
    stop: async () => {
      for (const c of clients) c.close();
    },
  });
  if (def.migrations && def.nats) {
    const relay = new OutboxRelay({
      pool: host.pool,
      js: host.nats.js,
      schema,
      retainPublishedMs: config.OUTBOX_RETENTION,
      lingerMs: config.OUTBOX_LINGER,
      onError: (err: unknown) => logger.warn({ err }, "outbox relay error; retrying"),
    });
    lifecycle.add("outbox-relay", {
      start: async () => relay.start(),
      stop: () => relay.stop(),
    });
    const lag = setInterval(() => {
      relay.lag().then(
        (l) => {
          metrics.outbox.setPending(l.pending);
          metrics.outbox.setOldestAgeSeconds(l.oldestAgeSeconds);
        },
        () => {},
      );
    }, 5_000);
    lag.unref();
    lifecycle.add("outbox-lag", { stop: async () => clearInterval(lag) });
  }

  await def.setup(host);
  let port = 0;
  let metricsServer: { stop(): Promise<void> } | undefined;
  if (config.METRICS_PORT > 0) {
    lifecycle.add("metrics", {
      start: async () => {
        metricsServer = await startMetricsServer({ port: config.METRICS_PORT, registry: metrics.registry });
      },
      stop: async () => metricsServer?.stop(),
    });
  }
  lifecycle.add("grpc", {
    start: async () => {
      port = await server.start(config.PORT);
    },
    stop: () => server.stop(config.GRACE_MS),
  });
  await lifecycle.start();
  server.setServing("SERVING");
  logger.info({ port, schema }, `${def.name} service ready`);
  const stop = (reason = "stop requested") => lifecycle.stop(reason);
  return { host, port, address: `127.0.0.1:${port}`, stop };
}

/**
 * Runs a service as a process: starts it, turns SIGTERM/SIGINT into a graceful stop (forced
 * after FORCE_MS), and exits non-zero with a clear message when start-up fails.
 */
export async function runMain<S extends ConfigSpec>(def: ServiceDefinition<S>): Promise<void> {
  try {
    const running = await startService(def);
    const { config, logger, lifecycle } = running.host;
    lifecycle.handleSignals({ graceMs: config.GRACE_MS, forceMs: config.FORCE_MS, logger });
  } catch (err) {
    process.stderr.write(
      `${def.name}: failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exit(1);
  }
}
