/**
 * ApiKeyCreated / ApiKeyRevoked, staged in the outbox in the transaction of the change
 * (relayed by the service host when the gateway connects to NATS). Neither the secret nor its
 * hash ever appears in an event.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import { ActorType } from "../../../gen/codex/events/v1/envelope_pb.js";
import { ApiKeyCreatedSchema, ApiKeyRevokedSchema } from "../../../gen/codex/events/v1/gateway_events_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { newEnvelope, stageEvent } from "../../../mesh/events/envelope.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";
import { roleToProto } from "../auth/roles.js";
import type { ApiKeyRow } from "./store.js";

const ACTOR: Record<Principal["type"], ActorType> = {
  user: ActorType.USER,
  api_key: ActorType.API_KEY,
  agent: ActorType.AGENT,
  service: ActorType.SERVICE,
};

export interface EventOrigin {
  principal: Principal;
  correlationId: string;
  occurredAt: Date;
}

function envelopeBase(row: ApiKeyRow, origin: EventOrigin) {
  return {
    aggregateType: "api_key",
    aggregateId: row.id,
    aggregateVersion: row.version,
    projectId: row.projectId,
    actor: {
      type: ACTOR[origin.principal.type],
      id: origin.principal.id,
      displayName: origin.principal.displayName ?? "",
    },
    correlationId: origin.correlationId,
    source: "gateway",
  };
}

export async function stageCreated(
  client: pg.ClientBase,
  subjects: Subjects,
  row: ApiKeyRow,
  origin: EventOrigin,
): Promise<void> {
  const payload = create(ApiKeyCreatedSchema, {
    apiKeyId: row.id,
    projectId: row.projectId,
    displayName: row.displayName,
    role: roleToProto(row.role),
    scopes: row.scopes,
    keyPrefix: row.keyPrefix,
    expireTime: timestampFromDate(row.expireTime),
    createdBy: row.createdBy,
  });
  const envelope = newEnvelope({ schema: ApiKeyCreatedSchema, payload, ...envelopeBase(row, origin) });
  envelope.occurredAt = timestampFromDate(origin.occurredAt);
  await stageEvent(client, subjects, envelope);
}

export async function stageRevoked(
  client: pg.ClientBase,
  subjects: Subjects,
  row: ApiKeyRow,
  origin: EventOrigin,
): Promise<void> {
  const payload = create(ApiKeyRevokedSchema, {
    apiKeyId: row.id,
    projectId: row.projectId,
    keyPrefix: row.keyPrefix,
    reason: row.revokeReason,
    revokedBy: row.revokedBy,
  });
  const envelope = newEnvelope({ schema: ApiKeyRevokedSchema, payload, ...envelopeBase(row, origin) });
  envelope.occurredAt = timestampFromDate(origin.occurredAt);
  await stageEvent(client, subjects, envelope);
}
