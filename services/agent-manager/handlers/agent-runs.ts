/**
 * The unary agent RPCs, for agents that cannot hold a stream: ClaimRun (long poll), RenewLease
 * (one run's heartbeat), AppendLogs, RequestInfo and CompleteRun. They share the Connect
 * stream's operations, so the lease rules are the same whichever way an agent talks.
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AgentMetricsSchema } from "../../../gen/codex/agentmanager/v1/agent_pb.js";
import type { AgentManagerService } from "../../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { WorkItemSnapshotSchema } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { notFound } from "../../../mesh/errors.js";
import type { CallContext, ServiceImpl } from "../../../mesh/grpc/types.js";
import { authenticateAgent, sessionTokenOf } from "../connect/agent-auth.js";
import type { Core } from "../core.js";
import { answersFor, requestInfo } from "../dispatch/info-ops.js";
import { checkLease } from "../domain/run-state.js";
import { UUID } from "../domain/validation.js";
import { agentNotOnline, notLeaseHolder, staleLease } from "../errors.js";
import { agentOrigin } from "../events/origin.js";
import { markConnected } from "../store/agent-changes.js";
import { profileOf } from "../store/agents.js";
import { msOf } from "../store/convert.js";
import { toInfoRequest } from "../store/info-requests.js";
import { getRun, leasedRunsOf, toRun } from "../store/runs.js";
import { inTx } from "../store/tx.js";

type Impl = ServiceImpl<typeof AgentManagerService>;
type AgentRpcs = "claimRun" | "renewLease" | "appendLogs" | "requestInfo" | "completeRun";

const MAX_WAIT_MS = 60_000;
/** Last step reported per run by RenewLease, so steady renewals cost no Postgres write. */
const STEP_CACHE_MAX = 10_000;

export function agentRunHandlers(core: Core): Pick<Impl, AgentRpcs> {
  const steps = new Map<string, number>();
  const caller = (ctx: CallContext, claimedId = "") =>
    authenticateAgent(core.pool, core.keys, {
      principal: ctx.principal,
      token: sessionTokenOf(ctx.metadata),
      claimedId,
    });
  const metricsOf = (m: Parameters<typeof toBinary<typeof AgentMetricsSchema>>[1] | undefined) =>
    m ? Buffer.from(toBinary(AgentMetricsSchema, m)).toString("base64") : "";

  return {
    async claimRun(req, ctx) {
      let agent = await caller(ctx, req.agentId);
      if (agent.draining) throw agentNotOnline(agent.id, "DRAINING");
      core.metrics.heartbeats.inc();
      await core.ops.renew(agent.id, [], metricsOf(req.metrics));
      agent =
        (await inTx(core.pool, core.subjects, (tx) =>
          markConnected(tx, agent.id, agentOrigin(agent.id, ctx.correlationId)),
        )) ?? agent;
      const held = (await leasedRunsOf(core.pool, agent.id)).map((r) => r.id);
      const free = agent.capacity - held.length;
      const max = Math.min(Math.max(req.maxRuns, 1), free);
      if (max <= 0) return { assignments: [] };
      const waitMs = Math.min(Math.max(msOf(req.wait), 0), MAX_WAIT_MS);
      // A long poll is a live agent: keep its beat fresh so it is not found OFFLINE meanwhile.
      const beat = setInterval(() => {
        core.leases.beat(agent.id, Date.now()).catch(() => {});
      }, core.settings.heartbeatIntervalMs);
      const rows = await core.dispatcher
        .claim(
          agent.id,
          { profile: profileOf(agent), capacity: agent.capacity, draining: agent.draining, held },
          max,
          waitMs,
        )
        .finally(() => clearInterval(beat));
      return {
        assignments: rows.map((row) => ({
          run: toRun(row),
          workItem: fromBinary(WorkItemSnapshotSchema, row.work_item),
          fencingToken: row.fencing_token,
          ...(row.lease_expire_at ? { leaseExpireTime: timestampFromMs(row.lease_expire_at.getTime()) } : {}),
        })),
      };
    },

    async renewLease(req, ctx) {
      const agent = await caller(ctx);
      core.metrics.heartbeats.inc();
      const [status] = await core.ops.renew(
        agent.id,
        [{ runId: req.runId, token: req.fencingToken }],
        metricsOf(req.metrics),
      );
      if (!status?.valid) {
        const run = UUID.test(req.runId) ? await getRun(core.pool, req.runId) : undefined;
        if (!run) throw notFound("run", req.runId);
        const why = checkLease(
          { state: run.state, fencingToken: run.fencing_token, agentId: run.agent_id },
          agent.id,
          req.fencingToken,
        );
        throw why === "NOT_LEASE_HOLDER" ? notLeaseHolder(req.runId) : staleLease(req.runId, run.state);
      }
      if (steps.get(req.runId) !== req.currentStep) {
        await core.ops.start(agent.id, req.runId, req.fencingToken, req.currentStep, ctx.correlationId);
        if (steps.size >= STEP_CACHE_MAX) steps.clear();
        steps.set(req.runId, req.currentStep);
      }
      const infoAnswers = await answersFor(core, agent.id, [req.runId], false);
      return { lease: status, infoAnswers };
    },

    async appendLogs(req, ctx) {
      const agent = await caller(ctx);
      const result = await core.ops.appendLogs(
        agent.id,
        req.runId,
        req.fencingToken,
        req.chunks,
        ctx.correlationId,
      );
      return { persistedSeq: result.persistedSeq };
    },

    async requestInfo(req, ctx) {
      const agent = await caller(ctx);
      const row = await requestInfo(
        core,
        agent.id,
        {
          runId: req.runId,
          token: req.fencingToken,
          requestId: req.requestId,
          fields: req.fields,
          reason: req.reason,
        },
        ctx.correlationId,
      );
      return { infoRequest: toInfoRequest(row) };
    },

    async completeRun(req, ctx) {
      const agent = await caller(ctx);
      const { row } = await core.ops.complete(
        agent.id,
        req.runId,
        req.fencingToken,
        { status: req.status, exitCode: req.exitCode, error: req.error },
        ctx.correlationId,
      );
      steps.delete(req.runId);
      return { run: toRun(row) };
    },
  };
}
