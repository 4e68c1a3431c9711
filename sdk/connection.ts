/**
 * Typed clients to the agent manager and the work item service, and the metadata each call
 * carries. The SDK does its own reconnecting and retrying (graded by code), so the mesh
 * client's retry and circuit breaker are off: a breaker would turn a brief outage into fast
 * failures that burn the reconnect budget.
 */

import { randomUUID } from "node:crypto";
import { AgentManagerService } from "../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { WorkItemService } from "../gen/codex/workitem/v1/workitem_service_pb.js";
import type { Principal } from "../mesh/context.js";
import { createClient } from "../mesh/grpc/client.js";
import type { ServiceClient } from "../mesh/grpc/types.js";
import { PRINCIPAL_HEADER, signPrincipal } from "../mesh/principal-token.js";
import { durationMs } from "./time.js";
import type { AgentIdentity, ConnectionOptions } from "./types.js";

export type ManagerClient = ServiceClient<typeof AgentManagerService>;
export type WorkItemClient = ServiceClient<typeof WorkItemService>;

export class AgentClients {
  readonly manager: ManagerClient;
  readonly workItems: WorkItemClient;

  constructor(private readonly opts: ConnectionOptions) {
    const common = { retry: false, breaker: false, defaultTimeoutMs: opts.callTimeoutMs ?? 10_000 } as const;
    this.manager = createClient(AgentManagerService, { address: opts.address, ...common });
    this.workItems = createClient(WorkItemService, {
      address: opts.artifactAddress ?? opts.address,
      ...common,
    });
  }

  /**
   * Metadata for one call: the configured credential, and — for direct connections — a mesh
   * principal for `agentId`, with the agent role in `projectId` when the call concerns a run
   * (the work item service authorizes uploads by project role).
   */
  headers(agentId: string, projectId?: string): Record<string, string> {
    const out: Record<string, string> = {};
    const c = this.opts.credentials;
    if (c) out.authorization = `Bearer ${"apiKey" in c ? c.apiKey : c.bearerToken}`;
    if (this.opts.meshSecret) {
      const principal: Principal = { type: "agent", id: agentId };
      if (projectId) principal.projectRoles = { [projectId]: "agent" };
      out[PRINCIPAL_HEADER] = signPrincipal(principal, this.opts.meshSecret, 60_000);
    }
    return out;
  }

  close(): void {
    this.manager.close();
    this.workItems.close();
  }
}

/** An agent session issued by RegisterAgent. */
export interface Session {
  agentId: string;
  /** Secret: goes in the hello, never in logs. */
  token: string;
  heartbeatMs: number;
}

/** Registers (or re-registers, keeping the id) the agent and returns its new session. */
export async function registerAgent(
  clients: AgentClients,
  a: AgentIdentity,
  knownId: string | undefined,
  signal: AbortSignal,
): Promise<Session> {
  const res = await clients.manager.registerAgent(
    {
      agent: {
        name: a.name,
        labels: a.labels ?? {},
        capabilities: (a.capabilities ?? []).map((c) => ({ name: c.name, versions: c.versions ?? [] })),
        os: a.os ?? process.platform,
        region: a.region ?? "",
        capacity: a.capacity,
        version: a.version ?? "",
      },
      requestId: randomUUID(),
    },
    { headers: clients.headers(knownId ?? a.name), signal },
  );
  return {
    agentId: res.agent?.id ?? "",
    token: res.sessionToken,
    heartbeatMs: durationMs(res.heartbeatInterval) ?? 5_000,
  };
}
