/**
 * The Agent Manager service: the agent fleet and its runs (registration, Connect streams,
 * assignment, leases with fencing tokens, logs, info requests). Postgres holds durable run
 * state and is written in group commits with the outbox; Redis holds leases and liveness (never
 * a heartbeat in Postgres); assignments are pushed on open streams by an in-memory dispatcher.
 * See docs/adr/0015-agent-manager.md.
 */
import { AgentManagerService } from "../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { ConfigError } from "../../mesh/config.js";
import type { ServiceDefinition } from "../../mesh/service-host.js";
import { createAmMetrics } from "./am-metrics.js";
import { agentManagerConfigSpec } from "./config.js";
import { SessionRegistry } from "./connect/registry.js";
import type { Core, Settings } from "./core.js";
import { AgentOps } from "./dispatch/agent-ops.js";
import { Dispatcher, pendingOf } from "./dispatch/dispatcher.js";
import { LogHub } from "./dispatch/log-hub.js";
import { OfflineDetector } from "./dispatch/offline-detector.js";
import { Sweeper } from "./dispatch/sweeper.js";
import { deriveKeys } from "./domain/keys.js";
import { claimRunConsumer } from "./events/claim-command.js";
import { selfOrigin } from "./events/origin.js";
import { registrationHandlers } from "./handlers/agent-registration.js";
import { agentRunHandlers } from "./handlers/agent-runs.js";
import { agentHandlers } from "./handlers/agents.js";
import { connectHandlers } from "./handlers/connect.js";
import { infoRequestHandlers } from "./handlers/info-requests.js";
import { logHandlers } from "./handlers/logs.js";
import { runHandlers } from "./handlers/runs.js";
import { LeaseStore } from "./liveness/lease-store.js";
import { Notifier } from "./liveness/notifier.js";
import { AnswerSecrets } from "./store/answer-secrets.js";
import { GroupCommitter } from "./store/group-commit.js";
import { logKind } from "./store/log-batch.js";
import { migrations } from "./store/migrations.js";
import { assignKind, enqueueKind, startKind } from "./store/run-batches.js";
import { endingKinds } from "./store/run-endings.js";
import { pendingRuns } from "./store/runs.js";

export const agentManagerService: ServiceDefinition<typeof agentManagerConfigSpec> = {
  name: "agent-manager",
  config: agentManagerConfigSpec,
  migrations,
  nats: true,
  redis: true,
  setup(host) {
    const c = host.config;
    if (c.AGENT_MANAGER_LEASE_TTL <= c.AGENT_MANAGER_HEARTBEAT_INTERVAL) {
      throw new ConfigError([
        {
          variable: "AGENT_MANAGER_LEASE_TTL",
          reason: "must be longer than AGENT_MANAGER_HEARTBEAT_INTERVAL",
        },
      ]);
    }
    const { logger, pool } = host;
    const subjects = host.nats.subjects;
    const prefix = c.AGENT_MANAGER_REDIS_PREFIX;
    const settings: Settings = {
      heartbeatIntervalMs: c.AGENT_MANAGER_HEARTBEAT_INTERVAL,
      leaseTtlMs: c.AGENT_MANAGER_LEASE_TTL,
      maxLeaseExpiries: c.AGENT_MANAGER_MAX_LEASE_EXPIRIES,
      sessionTtlMs: c.AGENT_MANAGER_SESSION_TTL,
      cancelGraceMs: c.AGENT_MANAGER_CANCEL_GRACE,
      registrationKeys: c.AGENT_MANAGER_REGISTRATION_KEYS,
    };
    const keys = deriveKeys(c.AGENT_MANAGER_ENCRYPTION_KEY);
    // Heartbeats, grants and notices are many small commands: pipeline them per event-loop turn.
    const redis = host.redis.duplicate({ enableAutoPipelining: true });
    redis.on("error", (err: Error) => logger.warn({ err }, "redis connection error"));
    const metrics = createAmMetrics(host.metrics.registry);
    const secrets = new AnswerSecrets(keys);
    const endings = endingKinds({ secrets, maxExpiries: settings.maxLeaseExpiries });
    const logs = logKind(secrets);
    const leases = new LeaseStore(redis, prefix);
    const notifier = new Notifier(redis, `${prefix}notices`, logger);
    const committer = new GroupCommitter({
      pool,
      subjects,
      logger,
      maxBatch: c.AGENT_MANAGER_COMMIT_BATCH,
      kinds: [
        enqueueKind,
        assignKind,
        startKind,
        logs,
        endings.complete,
        endings.reject,
        endings.release,
        endings.expire,
        endings.cancelOverdue,
      ],
      onBatch: (size, seconds) => {
        metrics.batchSize.observe(size);
        metrics.batchSeconds.observe(seconds);
      },
    });
    let sweeper: Sweeper | undefined;
    const ops = new AgentOps({
      committer,
      endings,
      leases,
      notifier,
      secrets,
      logs,
      leaseTtlMs: settings.leaseTtlMs,
      onLeaseStoreLost: () => sweeper?.requestRebuild(),
    });
    const dispatcher = new Dispatcher({
      committer,
      leases,
      leaseTtlMs: settings.leaseTtlMs,
      logger,
      onClaimed: (taken) => metrics.claims.inc({ outcome: taken ? "taken" : "missed" }),
      onUndelivered: (row) => {
        committer
          .submit(
            endings.release,
            {
              runId: row.id,
              agentId: row.agent_id,
              token: row.fencing_token,
              reason: "the agent's stream closed before the assignment was delivered",
              origin: selfOrigin(),
            },
            row.id,
          )
          .then(async (released) => {
            await leases.release([row.id]);
            if (released) notifier.emit({ t: "pending", run: pendingOf(released) });
          })
          .catch((err: unknown) =>
            logger.warn({ err, runId: row.id }, "undelivered run not handed back; its lease will expire"),
          );
      },
    });
    const logHub = new LogHub();
    notifier.on((n) => {
      if (n.t === "pending") dispatcher.addPending(n.run);
      else if (n.t === "taken") dispatcher.removePending(n.runId);
      else if (n.t === "released") dispatcher.released(n.agentId, n.runId);
      else if (n.t === "drain") dispatcher.setDraining(n.agentId, n.draining);
      else if (n.t === "logs") logHub.notify(n.runId);
    });
    const sessions = new SessionRegistry(notifier, logger, (n) => metrics.connected.set(n));
    sweeper = new Sweeper({
      pool,
      committer,
      endings,
      leases,
      dispatcher,
      notifier,
      ops,
      logger,
      intervalMs: c.AGENT_MANAGER_SWEEP_INTERVAL,
      leaseTtlMs: settings.leaseTtlMs,
      cancelGraceMs: settings.cancelGraceMs,
    });
    const detector = new OfflineDetector({
      pool,
      subjects,
      leases,
      notifier,
      secrets,
      logger,
      heartbeatIntervalMs: settings.heartbeatIntervalMs,
      missedIntervals: c.AGENT_MANAGER_OFFLINE_AFTER_INTERVALS,
    });
    const core: Core = {
      pool,
      subjects,
      logger,
      keys,
      settings,
      metrics,
      committer,
      endings,
      leases,
      notifier,
      dispatcher,
      secrets,
      logHub,
      ops,
      sessions,
      sweeper,
    };
    host.server.add(AgentManagerService, {
      ...registrationHandlers(core),
      ...agentHandlers(core),
      ...connectHandlers(core),
      ...agentRunHandlers(core),
      ...runHandlers(core),
      ...logHandlers(core),
      ...infoRequestHandlers(core),
    });
    // Streams never end by themselves: close them as soon as shutdown starts, so agents
    // reconnect to another replica instead of waiting for the grace time.
    host.lifecycle.onStateChange((state) => {
      if (state === "DRAINING") sessions.closeAll();
    });
    const gauge = setInterval(() => metrics.pending.set(dispatcher.pendingCount), 5_000);
    gauge.unref();
    const active = sweeper;
    host.addComponent("agent-manager", {
      start: async () => {
        await notifier.start();
        if (!(await leases.intact())) await active.rebuild(Date.now());
        for (const row of await pendingRuns(pool, 100_000)) dispatcher.addPending(pendingOf(row));
        active.start();
        detector.start();
      },
      stop: async () => {
        clearInterval(gauge);
        sessions.closeAll();
        await active.stop();
        await detector.stop();
        await committer.flushed();
        await notifier.stop();
        redis.disconnect();
      },
    });
    // Added after the component above, so it stops first (no command handled while flushing).
    const claims = claimRunConsumer(core, host.nats.nc);
    host.addComponent("claim-run-consumer", { start: () => claims.start(), stop: () => claims.stop() });
  },
};
