/**
 * TEST ONLY. Small upstreams built from the real protos (AgentManagerService, WorkItemService),
 * served by the real mesh host, for what the real services do not offer yet or cannot make
 * observable: server streams that follow forever, client and bidi streams, deadlines and
 * cancellations as the upstream sees them, and which replica answered.
 */
import { AgentManagerService } from "../../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { LogStream } from "../../../gen/codex/agentmanager/v1/logs_pb.js";
import { WorkItemService } from "../../../gen/codex/workitem/v1/workitem_service_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { Code, failedPrecondition, notFound, ServiceError } from "../../../mesh/errors.js";
import type { CallContext, ServiceImpl } from "../../../mesh/grpc/types.js";
import type { ServiceDefinition } from "../../../mesh/service-host.js";
import { withUnimplemented } from "../../../test/support/stand-in.js";

/** What an upstream saw of one call. */
export interface SeenCall {
  readonly replica: string;
  readonly method: string;
  readonly requestId: string;
  readonly correlationId: string;
  readonly principal: Principal | undefined;
  readonly deadline: Date | undefined;
  readonly metadata: Record<string, unknown>;
}

/** Shared by every replica of a test: calls seen and streams the client cancelled. */
export class UpstreamLog {
  readonly calls: SeenCall[] = [];
  readonly cancelled: string[] = [];

  record(replica: string, ctx: CallContext): void {
    this.calls.push({
      replica,
      method: ctx.method.split("/").pop() ?? "",
      requestId: ctx.requestId,
      correlationId: ctx.correlationId,
      principal: ctx.principal,
      deadline: ctx.deadline,
      metadata: ctx.metadata.getMap(),
    });
  }
}

/** A run id larger than 2^53: JSON numbers would corrupt it, strings keep it. */
export const BIG_FENCING_TOKEN = 9_007_199_254_740_993n;

/** One replica serving AgentManagerService (GetRun, WatchRunLogs, Connect) and WorkItemService (UploadArtifact). */
export function fakeUpstream(replica: string, log: UpstreamLog): ServiceDefinition<Record<string, never>> {
  const agents: Partial<ServiceImpl<typeof AgentManagerService>> = {
    async getRun(req, ctx) {
      log.record(replica, ctx);
      if (req.runId === "missing") throw notFound("run", req.runId);
      // A slow answer: a call still in flight when the test stops or restarts something.
      if (req.runId.startsWith("slow")) await new Promise((r) => setTimeout(r, 300));
      if (req.runId.startsWith("hang")) {
        // Answers only when the caller goes away: shows a unary cancellation reaching the service.
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener("abort", () => resolve(), { once: true }),
        );
        log.cancelled.push(req.runId);
        throw new ServiceError(Code.CANCELLED, "caller went away");
      }
      return { run: { id: req.runId, agentId: replica, attempt: 1, fencingToken: BIG_FENCING_TOKEN } };
    },
    async *watchRunLogs(req, ctx) {
      log.record(replica, ctx);
      const streams = req.filter?.streams ?? [];
      const stream = streams[0] ?? LogStream.STDOUT;
      for (let i = 0; i < 3; i++) {
        const offset = req.startOffset + BigInt(i);
        yield { entries: [{ offset, stream, text: `${req.runId} line ${offset}` }] };
      }
      if (req.runId === "failing") throw failedPrecondition("log store lost the run", [], "LOGS_LOST");
      if (!req.follow) {
        yield { endOfLogs: true };
        return;
      }
      // Following: keep the stream open until the client goes away, as a live run would.
      await new Promise<void>((resolve) =>
        ctx.signal.addEventListener("abort", () => resolve(), { once: true }),
      );
      log.cancelled.push(req.runId);
    },
    async *connect(reqs, ctx) {
      log.record(replica, ctx);
      ctx.signal.addEventListener("abort", () => log.cancelled.push(`connect:${ctx.requestId}`), {
        once: true,
      });
      for await (const msg of reqs) yield { message: { case: "ack", value: { ackedSeq: msg.messageSeq } } };
    },
  };
  const workItems: Partial<ServiceImpl<typeof WorkItemService>> = {
    async uploadArtifact(reqs, ctx) {
      log.record(replica, ctx);
      let name = "";
      let size = 0n;
      for await (const r of reqs) {
        if (r.payload.case === "header") name = r.payload.value.name;
        else if (r.payload.case === "chunk") size += BigInt(r.payload.value.length);
      }
      return { artifact: { id: `artifact-${replica}`, name, sizeBytes: size } };
    },
  };
  return {
    name: `fake-${replica}`,
    setup(host) {
      host.server.add(AgentManagerService, withUnimplemented(AgentManagerService, agents, "the fake"));
      host.server.add(WorkItemService, withUnimplemented(WorkItemService, workItems, "the fake"));
    },
  };
}
