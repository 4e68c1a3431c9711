/**
 * The opening of a Connect session: authenticate the hello, resume the runs the agent still
 * executes (valid only with the current token, holder and an active run), mark the agent
 * connected, and say what the agent must know at once (drain, cancellations, answers).
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs, timestampNow } from "@bufbuild/protobuf/wkt";
import type { AgentHello, ConnectResponseSchema } from "../../../gen/codex/agentmanager/v1/connect_pb.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import type { Core } from "../core.js";
import type { LeaseStatusInit } from "../dispatch/agent-ops.js";
import { answersFor } from "../dispatch/info-ops.js";
import { checkLease } from "../domain/run-state.js";
import { UUID } from "../domain/validation.js";
import { agentOrigin } from "../events/origin.js";
import { markConnected } from "../store/agent-changes.js";
import type { AgentRow } from "../store/agents.js";
import { getRun, type RunRow } from "../store/runs.js";
import { inTx } from "../store/tx.js";
import { authenticateAgent, sessionTokenOf } from "./agent-auth.js";

export type ResponseInit = MessageInitShape<typeof ConnectResponseSchema>;

export interface Opened {
  agent: AgentRow;
  /** Welcome first, then drain notice, cancellations and answers of resumed runs. */
  messages: ResponseInit[];
  /** Runs resumed on this stream. */
  resumed: RunRow[];
}

export async function openSession(core: Core, hello: AgentHello, ctx: CallContext): Promise<Opened> {
  const token = hello.sessionToken || sessionTokenOf(ctx.metadata);
  let agent = await authenticateAgent(core.pool, core.keys, {
    principal: ctx.principal,
    token,
    claimedId: hello.agentId,
  });
  const now = Date.now();
  const expire = now + core.settings.leaseTtlMs;
  const statuses: LeaseStatusInit[] = [];
  const resumed: RunRow[] = [];
  for (const lease of hello.resumeRuns) {
    const run = UUID.test(lease.runId) ? await getRun(core.pool, lease.runId) : undefined;
    const why = run
      ? checkLease(
          { state: run.state, fencingToken: run.fencing_token, agentId: run.agent_id },
          agent.id,
          lease.fencingToken,
        )
      : "STALE_LEASE";
    if (!run || why) {
      statuses.push({ runId: lease.runId, fencingToken: lease.fencingToken, valid: false });
      continue;
    }
    resumed.push(run);
    statuses.push({
      runId: run.id,
      fencingToken: run.fencing_token,
      valid: true,
      leaseExpireTime: timestampFromMs(expire),
      cancelRequested: run.cancel_requested,
    });
  }
  await core.leases.grant(
    resumed.map((r) => ({
      runId: r.id,
      token: r.fencing_token,
      agentId: agent.id,
      expireMs: expire,
      cancel: r.cancel_requested,
    })),
  );
  await core.leases.beat(agent.id, now);
  const connected = await inTx(core.pool, core.subjects, (tx) =>
    markConnected(tx, agent.id, agentOrigin(agent.id, ctx.correlationId)),
  );
  if (connected) agent = connected;
  const messages: ResponseInit[] = [
    {
      message: {
        case: "welcome",
        value: {
          agentId: agent.id,
          heartbeatInterval: durationFromMs(core.settings.heartbeatIntervalMs),
          leaseTtl: durationFromMs(core.settings.leaseTtlMs),
          resumed: statuses,
          serverTime: timestampNow(),
        },
      },
    },
  ];
  if (agent.draining) {
    messages.push({
      message: {
        case: "drain",
        value: {
          reason: agent.state_reason,
          ...(agent.drain_deadline ? { deadline: timestampFromMs(agent.drain_deadline.getTime()) } : {}),
        },
      },
    });
  }
  for (const run of resumed.filter((r) => r.cancel_requested)) {
    messages.push({
      message: {
        case: "cancel",
        value: {
          runId: run.id,
          fencingToken: run.fencing_token,
          reason: run.cancel_reason,
          grace: durationFromMs(core.settings.cancelGraceMs),
        },
      },
    });
  }
  for (const answer of await answersFor(
    core,
    agent.id,
    resumed.map((r) => r.id),
    true,
  )) {
    messages.push({ message: { case: "infoAnswer", value: answer } });
  }
  return { agent, messages, resumed };
}
