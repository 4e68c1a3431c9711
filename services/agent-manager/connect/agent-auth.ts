/**
 * Who an agent call comes from. An agent is recognised by the principal the gateway signed
 * (type "agent", id = agent id) and/or by its session token from RegisterAgent ("authorization:
 * Bearer <token>" or AgentHello.session_token). A token, when presented, must be the agent's
 * current, unexpired session (re-registration revokes older ones) and names the agent; without
 * a token the signed principal must be the agent itself. Behind the gateway an agent holds an
 * agent credential (an agent JWT whose subject is not the agent id, or an API key with the AGENT
 * role): that proves "an agent" and the session token proves "which". Other principals are
 * refused: agent calls are for agents.
 */
import type { Metadata } from "@grpc/grpc-js";
import type { Principal } from "../../../mesh/context.js";
import { permissionDenied, unauthenticated } from "../../../mesh/errors.js";
import { type Keys, parseSessionToken } from "../domain/keys.js";
import { UUID } from "../domain/validation.js";
import { sessionInvalid } from "../errors.js";
import { type AgentRow, getAgent } from "../store/agents.js";
import type { Db } from "../store/runs.js";

/** The bearer credential of a call's metadata, if any. */
export function bearerOf(metadata: Metadata): string | undefined {
  const v = metadata.get("authorization")[0];
  if (typeof v !== "string") return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(v.trim());
  return m?.[1];
}

/**
 * The session token among a call's credentials. Only "am1." tokens are sessions: a bearer the
 * gateway forwards (an agent JWT or API key it already turned into the signed principal) is not
 * this service's to check.
 */
export function sessionTokenOf(metadata: Metadata): string | undefined {
  const bearer = bearerOf(metadata);
  return bearer?.startsWith("am1.") ? bearer : undefined;
}

/**
 * The calling agent's row. `claimedId` is the agent id the request names (hello.agent_id,
 * ClaimRun.agent_id), empty when the request names none.
 */
export async function authenticateAgent(
  db: Db,
  keys: Keys,
  call: { principal: Principal | undefined; token: string | undefined; claimedId: string },
  now = Date.now(),
): Promise<AgentRow> {
  const { principal, token } = call;
  if (principal && !isAgentCredential(principal)) {
    throw permissionDenied("this call is for agents only", "AGENT_PRINCIPAL_REQUIRED");
  }
  if (!token && principal?.type !== "agent") throw unauthenticated("an agent session token is required");
  const parsed = token ? parseSessionToken(keys, token) : undefined;
  if (token && !parsed) throw sessionInvalid();
  const agentId = parsed?.agentId ?? principal?.id ?? "";
  // A principal bound to one agent (its id is an agent id) may only use that agent's session.
  if (parsed && principal?.type === "agent" && UUID.test(principal.id) && principal.id !== parsed.agentId)
    throw sessionInvalid("the session token belongs to another agent");
  if (call.claimedId !== "" && call.claimedId !== agentId) {
    throw permissionDenied("agent_id is not the calling agent", "PERMISSION_DENIED", {
      agent_id: call.claimedId,
    });
  }
  const row = UUID.test(agentId) ? await getAgent(db, agentId) : undefined;
  if (!row) throw sessionInvalid("unknown agent: register first");
  if (parsed && (parsed.sessionId !== row.session_id || row.session_expire_at.getTime() <= now)) {
    throw sessionInvalid("the session was revoked or expired: register again");
  }
  return row;
}

/** An agent principal, or an API key whose roles are agent roles only (see domain/authz mayRegister). */
function isAgentCredential(p: Principal): boolean {
  if (p.type === "agent") return true;
  const roles = Object.values(p.projectRoles ?? {});
  return p.type === "api_key" && roles.length > 0 && roles.every((r) => /^(MEMBER_ROLE_)?agent$/i.test(r));
}
