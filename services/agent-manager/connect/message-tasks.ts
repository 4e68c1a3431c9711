/**
 * What each agent message on the Connect stream means: the run it concerns ("" for none, so it
 * needs no ordering) and the work to do. Refusals are thrown and become StreamErrors.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { AgentMetricsSchema } from "../../../gen/codex/agentmanager/v1/agent_pb.js";
import {
  type ConnectRequest,
  type InfoRequestCreated,
  InfoRequestCreatedSchema,
} from "../../../gen/codex/agentmanager/v1/connect_pb.js";
import { RunState } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { failedPrecondition, invalidArgument } from "../../../mesh/errors.js";
import type { Core } from "../core.js";
import type { LeaseStatusInit } from "../dispatch/agent-ops.js";
import { requestInfo } from "../dispatch/info-ops.js";

/** Where results that travel in the next Ack go. */
export interface TaskSink {
  leases(statuses: LeaseStatusInit[]): void;
  infoCreated(created: InfoRequestCreated): void;
  /** A heartbeat was processed: it is acknowledged even when the watermark cannot move. */
  beat(): void;
  /** The agent ended its lease on a run (completed or handed back). */
  ended(runId: string): void;
}

export function taskOf(
  core: Core,
  agentId: string,
  corr: string,
  msg: ConnectRequest,
  sink: TaskSink,
): [string, () => Promise<void>] {
  const ops = core.ops;
  const m = msg.message;
  switch (m.case) {
    case "heartbeat":
      return [
        "",
        async () => {
          core.metrics.heartbeats.inc();
          const metrics = m.value.metrics
            ? Buffer.from(toBinary(AgentMetricsSchema, m.value.metrics)).toString("base64")
            : "";
          const runs = m.value.runs.map((r) => ({ runId: r.runId, token: r.fencingToken }));
          sink.leases(await ops.renew(agentId, runs, metrics));
          sink.beat();
        },
      ];
    case "runStatus":
      return [
        m.value.runId,
        async () => {
          if (m.value.state !== RunState.RUNNING) {
            throw invalidArgument("run_status accepts only RUNNING", [
              { field: "run_status.state", description: "must be RUNNING" },
            ]);
          }
          await ops.start(agentId, m.value.runId, m.value.fencingToken, m.value.currentStep, corr);
        },
      ];
    case "logs":
      return [
        m.value.runId,
        async () => {
          await ops.appendLogs(agentId, m.value.runId, m.value.fencingToken, m.value.chunks, corr);
        },
      ];
    case "infoRequest":
      return [
        m.value.runId,
        async () => {
          const row = await requestInfo(core, agentId, { ...m.value, token: m.value.fencingToken }, corr);
          sink.infoCreated(
            create(InfoRequestCreatedSchema, { requestId: m.value.requestId, infoRequestId: row.id }),
          );
        },
      ];
    case "complete":
      return [
        m.value.runId,
        async () => {
          const { status, exitCode, error } = m.value;
          await ops.complete(agentId, m.value.runId, m.value.fencingToken, { status, exitCode, error }, corr);
          sink.ended(m.value.runId);
        },
      ];
    case "reject":
      return [
        m.value.runId,
        async () => {
          await ops.reject(agentId, m.value.runId, m.value.fencingToken, m.value.reason, corr);
          sink.ended(m.value.runId);
        },
      ];
    case "hello":
      return [
        "",
        async () => {
          throw failedPrecondition("hello was already received on this stream");
        },
      ];
    default:
      return [
        "",
        async () => {
          throw invalidArgument("empty message", [{ field: "message", description: "is required" }]);
        },
      ];
  }
}
