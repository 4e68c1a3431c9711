/**
 * TEST STAND-IN for the agent manager, as the workitem service uses it: a real gRPC server
 * (mesh GrpcServer) answering GetRun from runs a test declares, so upload tests can put a run in
 * any lease state. Every other RPC answers UNIMPLEMENTED. The end-to-end and SDK tests use the
 * real agent manager.
 */
import { create } from "@bufbuild/protobuf";
import { AgentManagerService } from "../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { type GetRunRequest, RunSchema, RunState } from "../../gen/codex/agentmanager/v1/run_pb.js";
import type { Principal } from "../../mesh/context.js";
import { Code, ServiceError } from "../../mesh/errors.js";
import { GrpcServer } from "../../mesh/grpc/server.js";
import type { ServiceImpl } from "../../mesh/grpc/types.js";
import { createLogger } from "../../mesh/logging.js";

export interface DeclaredRun {
  workItemId: string;
  agentId: string;
  fencingToken: bigint;
  state?: RunState;
}

export class RunsStandIn {
  readonly #runs = new Map<string, DeclaredRun>();
  /** GetRun calls answered, by run id. */
  readonly asked: string[] = [];
  readonly #server: GrpcServer;
  #port = 0;

  constructor(secret: string) {
    this.#server = new GrpcServer({
      logger: createLogger({ service: "agent-manager-stand-in", level: "warn" }),
      principalSecret: secret,
    });
    const impl: Record<string, unknown> = {};
    for (const m of AgentManagerService.methods) {
      impl[m.localName] = async () => {
        throw new ServiceError(Code.UNIMPLEMENTED, `${m.name} is not implemented by the stand-in`);
      };
    }
    impl.getRun = async (req: GetRunRequest, ctx: { principal?: Principal }) => {
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
    };
    this.#server.add(AgentManagerService, impl as ServiceImpl<typeof AgentManagerService>);
  }

  /** Declares (or replaces) a run as the agent manager would report it. */
  set(runId: string, run: DeclaredRun): void {
    this.#runs.set(runId, run);
  }

  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  async start(): Promise<void> {
    this.#port = await this.#server.start(0, "127.0.0.1");
    this.#server.setServing("SERVING");
  }

  async stop(): Promise<void> {
    await this.#server.stop(1_000);
  }
}
