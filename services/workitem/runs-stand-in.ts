/**
 * TEST STAND-IN for the agent manager, as the workitem service uses it: GetRun answered from runs
 * a test declares, so upload tests can put a run in any lease state (every other RPC answers
 * UNIMPLEMENTED). The end-to-end and SDK tests use the real agent manager.
 */
import { create } from "@bufbuild/protobuf";
import { AgentManagerService } from "../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { RunSchema, RunState } from "../../gen/codex/agentmanager/v1/run_pb.js";
import { Code, ServiceError } from "../../mesh/errors.js";
import { StandInServer } from "../../test/support/stand-in.js";

export interface DeclaredRun {
  workItemId: string;
  agentId: string;
  fencingToken: bigint;
  state?: RunState;
}

export class RunsStandIn extends StandInServer {
  readonly #runs = new Map<string, DeclaredRun>();
  /** GetRun calls answered, by run id. */
  readonly asked: string[] = [];

  constructor(secret: string) {
    super("agent-manager-stand-in", secret);
    this.add(AgentManagerService, {
      getRun: async (req, ctx) => {
        // As the real agent manager: agents may not read runs, and see "not found".
        if (ctx.principal?.type !== "service")
          throw new ServiceError(Code.NOT_FOUND, `run ${req.runId} not found`);
        this.asked.push(req.runId);
        const r = this.#runs.get(req.runId);
        if (!r) throw new ServiceError(Code.NOT_FOUND, `run ${req.runId} not found`);
        return {
          run: create(RunSchema, {
            id: req.runId,
            workItemId: r.workItemId,
            agentId: r.agentId,
            fencingToken: r.fencingToken,
            state: r.state ?? RunState.RUNNING,
          }),
        };
      },
    });
  }

  /** Declares (or replaces) a run as the agent manager would report it. */
  set(runId: string, run: DeclaredRun): void {
    this.#runs.set(runId, run);
  }
}
