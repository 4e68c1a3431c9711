/**
 * Whether an agent holds a run's current lease, as the agent manager (the owner of runs and
 * leases) says. An artifact uploaded for a run is accepted only from that agent with the run's
 * current fencing token: a stale agent — its lease expired and the run handed to another one, or
 * the run ended — must not attach results to it (the contract of UploadArtifactHeader.run_id).
 */
import { randomUUID } from "node:crypto";
import type { AgentManagerService } from "../../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { RunState } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { currentContext, type Principal, runWithContext } from "../../../mesh/context.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import type { ServiceClient } from "../../../mesh/grpc/types.js";

/** What the agent manager says about a run and a caller's claim to it. */
export type LeaseCheck = { held: true; workItemId: string } | { held: false; why: string; state: string };

export interface RunLeases {
  /** Throws UNAVAILABLE (retryable) when the agent manager cannot be asked. */
  check(runId: string, agentId: string, fencingToken: bigint): Promise<LeaseCheck>;
}

const LEASED = new Set([RunState.ASSIGNED, RunState.RUNNING]);

/** Who asks: the workitem service itself, not the agent being checked (agents may not read runs). */
const WORKITEM: Principal = { type: "service", id: "workitem" };

/** Asks the agent manager with GetRun (the workitem service's principal may read every run). */
export function agentManagerLeases(
  client: ServiceClient<typeof AgentManagerService>,
  timeoutMs: number,
): RunLeases {
  return {
    async check(runId, agentId, fencingToken) {
      let run: Awaited<ReturnType<typeof client.getRun>>["run"];
      try {
        // Same request and correlation ids, so the check shows in the upload's trace and logs.
        const ctx = currentContext();
        const asked = { requestId: ctx?.requestId ?? randomUUID(), correlationId: ctx?.correlationId ?? "" };
        run = (
          await runWithContext({ ...asked, principal: WORKITEM }, () =>
            client.getRun({ runId }, { timeoutMs }),
          )
        ).run;
      } catch (err) {
        const e = ServiceError.from(err);
        if (e.code === Code.NOT_FOUND) return { held: false, why: "the run is unknown", state: "UNKNOWN" };
        throw new ServiceError(Code.UNAVAILABLE, `cannot check the lease on run ${runId}: ${e.message}`);
      }
      if (!run) return { held: false, why: "the run is unknown", state: "UNKNOWN" };
      const state = RunState[run.state] ?? "UNSPECIFIED";
      if (!LEASED.has(run.state)) return { held: false, why: `the run is ${state}`, state };
      if (run.agentId !== agentId) return { held: false, why: "another agent holds the run", state };
      if (run.fencingToken !== fencingToken) {
        return { held: false, why: "the fencing token is not the run's current one", state };
      }
      return { held: true, workItemId: run.workItemId };
    },
  };
}
