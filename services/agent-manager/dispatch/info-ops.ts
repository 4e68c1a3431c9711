/**
 * Info requests: an agent asks (lease-checked), a person answers (values sealed at rest), and
 * the answer reaches only the agent holding the run. Delivery re-checks the holder in Postgres
 * at the moment of delivery, so an answer recorded while the run changed hands goes to the new
 * holder, never to the old one.
 */
import { randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { InfoAnswerSchema } from "../../../gen/codex/agentmanager/v1/info_request_pb.js";
import { invalidArgument, notFound } from "../../../mesh/errors.js";
import type { Core } from "../core.js";
import { openAnswer } from "../domain/keys.js";
import { checkLease, isActive } from "../domain/run-state.js";
import { checkInfoFields, checkReason, checkUuid } from "../domain/validation.js";
import { notLeaseHolder, staleLease } from "../errors.js";
import { agentOrigin } from "../events/origin.js";
import { answeredOf, createInfoRequest, type InfoRow, markDelivered } from "../store/info-requests.js";
import { getRun } from "../store/runs.js";
import { inTx } from "../store/tx.js";

export interface NewInfo {
  runId: string;
  token: bigint;
  requestId: string;
  fields: { name: string; description: string; secret: boolean }[];
  reason: string;
}

/** Creates (or replays) an info request of a run the agent holds. */
export async function requestInfo(
  core: Core,
  agentId: string,
  req: NewInfo,
  correlationId: string,
): Promise<InfoRow> {
  const problems = [
    ...checkUuid(req.runId, "run_id"),
    ...checkInfoFields(req.fields),
    ...checkReason(req.reason),
  ];
  if (problems.length > 0) throw invalidArgument("invalid info request", problems);
  const { row, created } = await inTx(core.pool, core.subjects, async (ctx) => {
    const run = await getRun(ctx.client, req.runId, "FOR SHARE");
    if (!run) throw notFound("run", req.runId);
    const why = checkLease(
      { state: run.state, fencingToken: run.fencing_token, agentId: run.agent_id },
      agentId,
      req.token,
    );
    if (why === "NOT_LEASE_HOLDER") throw notLeaseHolder(req.runId);
    if (why) throw staleLease(req.runId, run.state);
    return createInfoRequest(ctx, {
      id: randomUUID(),
      run,
      requestId: req.requestId || randomUUID(),
      fields: req.fields.map((f) => ({ name: f.name, description: f.description, secret: f.secret })),
      reason: req.reason,
      origin: agentOrigin(agentId, correlationId),
    });
  });
  if (created) core.logger.info({ infoRequestId: row.id, runId: row.run_id }, "info requested");
  return row;
}

export type InfoAnswerInit = MessageInitShape<typeof InfoAnswerSchema>;

/**
 * Answers for `agentId` on the given runs: only runs it holds right now (per Postgres), only
 * answers whose values are still held; all of them (a resumed stream) or the undelivered ones.
 * Marks them delivered.
 */
export async function answersFor(
  core: Core,
  agentId: string,
  runIds: readonly string[],
  all: boolean,
): Promise<InfoAnswerInit[]> {
  if (runIds.length === 0) return [];
  const rows = await answeredOf(core.pool, runIds, !all);
  if (rows.length === 0) return [];
  const holders = new Map<string, boolean>();
  for (const runId of new Set(rows.map((r) => r.run_id))) {
    const run = await getRun(core.pool, runId);
    holders.set(runId, run !== undefined && run.agent_id === agentId && isActive(run.state));
  }
  const out: InfoAnswerInit[] = [];
  const delivered: string[] = [];
  for (const r of rows) {
    if (!holders.get(r.run_id) || !r.answer_sealed) continue;
    out.push({
      infoRequestId: r.id,
      runId: r.run_id,
      requestId: r.request_id,
      values: openAnswer(core.keys, r.answer_sealed, r.id),
    });
    delivered.push(r.id);
  }
  await markDelivered(core.pool, delivered);
  return out;
}
