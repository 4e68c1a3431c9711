/** The Connect bidi stream: one Session per call (see connect/session.ts for the protocol). */
import type { AgentManagerService } from "../../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { Session } from "../connect/session.js";
import type { Core } from "../core.js";

export function connectHandlers(core: Core): Pick<ServiceImpl<typeof AgentManagerService>, "connect"> {
  return {
    connect(reqs, ctx) {
      return new Session(core, ctx).open(reqs);
    },
  };
}
