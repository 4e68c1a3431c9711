/**
 * The ClaimRun command (agent_events.proto): lease a given PENDING run to a given agent, for
 * operator pinning and the bridge serving legacy HTTP-polling agents. The claim is the same
 * conditional UPDATE the dispatcher uses (so a race with it has one winner); the agent's stream,
 * wherever it is, receives the assignment; refusals are published as ClaimRunRejected.
 * A replayed command whose run is already leased to the agent is acknowledged without effect.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { AgentState } from "../../../gen/codex/agentmanager/v1/agent_pb.js";
import { RunState } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { ClaimRunRejectedSchema, ClaimRunSchema } from "../../../gen/codex/events/v1/agent_events_pb.js";
import { ActorType, type EventEnvelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import { Code } from "../../../mesh/errors.js";
import { decodeEnvelope, unpackPayload } from "../../../mesh/events/envelope.js";
import { type ConsumedMessage, DurableConsumer, PermanentError } from "../../../mesh/nats/consumer.js";
import type { Core } from "../core.js";
import { isEligible } from "../domain/matching.js";
import { isActive } from "../domain/run-state.js";
import { UUID } from "../domain/validation.js";
import { stateName } from "../errors.js";
import { getAgent, profileOf } from "../store/agents.js";
import { msOf } from "../store/convert.js";
import { assignKind } from "../store/run-batches.js";
import { getRun, leasedRunsOf } from "../store/runs.js";
import { inTx } from "../store/tx.js";
import { envelope, type Origin } from "./origin.js";

export const CLAIM_RUN_DURABLE = "agent-manager-claim-run";

export function claimRunConsumer(core: Core, nc: NatsConnection): DurableConsumer {
  const s = core.subjects;
  return new DurableConsumer({
    nc,
    stream: s.streams.commands,
    durable: CLAIM_RUN_DURABLE,
    filterSubjects: [s.command("agentmanager", "ClaimRun")],
    dlqSubject: s.dlq(CLAIM_RUN_DURABLE),
    handler: (m) => handleClaimRun(core, m),
    retryBackoff: { initialMs: 200, maxMs: 10_000 },
    onError: (err, m) => core.logger.warn({ err, subject: m?.subject }, "ClaimRun command failed"),
  });
}

function originOfEnvelope(env: EventEnvelope): Origin {
  return {
    actorType: env.actor?.type ?? ActorType.SERVICE,
    actorId: env.actor?.id ?? "",
    displayName: env.actor?.displayName ?? "",
    correlationId: env.correlationId,
  };
}

async function handleClaimRun(core: Core, msg: ConsumedMessage): Promise<void> {
  let env: EventEnvelope;
  try {
    env = decodeEnvelope(msg.data);
  } catch {
    throw new PermanentError("undecodable envelope");
  }
  const cmd = unpackPayload(env, ClaimRunSchema);
  if (!cmd) throw new PermanentError(`not a ClaimRun command: ${env.type}`);
  const origin = originOfEnvelope(env);
  const requestId = cmd.requestId || env.id;
  const refuse = (code: Code, message: string) =>
    inTx(core.pool, core.subjects, async (tx) => {
      tx.stage(
        envelope(
          ClaimRunRejectedSchema,
          { runId: cmd.runId, agentId: cmd.agentId, requestId, status: { code, message } },
          { type: "run", id: cmd.runId || requestId },
          { ...origin, correlationId: origin.correlationId || requestId },
          tx.now,
        ),
      );
    });
  if (!UUID.test(cmd.runId) || !UUID.test(cmd.agentId))
    return refuse(Code.INVALID_ARGUMENT, "run_id and agent_id must be UUIDs");
  const [run, agent] = await Promise.all([getRun(core.pool, cmd.runId), getAgent(core.pool, cmd.agentId)]);
  if (!run) return refuse(Code.NOT_FOUND, `run ${cmd.runId} not found`);
  if (!agent) return refuse(Code.NOT_FOUND, `agent ${cmd.agentId} not found`);
  if (isActive(run.state) && run.agent_id === agent.id) return;
  if (run.state !== RunState.PENDING)
    return refuse(Code.FAILED_PRECONDITION, `run is ${stateName(run.state)}`);
  if (agent.state !== AgentState.ONLINE) {
    return refuse(Code.FAILED_PRECONDITION, `agent is ${AgentState[agent.state] ?? "UNSPECIFIED"}`);
  }
  const needs = { selector: run.agent_selector, tools: run.required_tools, rejectedBy: run.rejected_by };
  if (!isEligible(profileOf(agent), needs))
    return refuse(Code.FAILED_PRECONDITION, "agent is not eligible for the run");
  const room = core.dispatcher.roomFor(agent.id);
  const full =
    room === undefined ? (await leasedRunsOf(core.pool, agent.id)).length >= agent.capacity : room <= 0;
  if (full) return refuse(Code.FAILED_PRECONDITION, "agent is at capacity");
  core.notifier.emit({ t: "taken", runId: run.id });
  const ttlMs = cmd.ttl ? msOf(cmd.ttl) : core.settings.leaseTtlMs;
  const row = await core.committer.submit(
    assignKind,
    { runId: run.id, agentId: agent.id, leaseTtlMs: ttlMs, origin },
    run.id,
  );
  if (!row) return refuse(Code.FAILED_PRECONDITION, "run is no longer PENDING");
  await core.leases.grant([
    {
      runId: row.id,
      token: row.fencing_token,
      agentId: agent.id,
      expireMs: row.lease_expire_at?.getTime() ?? Date.now() + ttlMs,
    },
  ]);
  core.notifier.emit({ t: "assigned", agentId: agent.id, runId: row.id });
}
