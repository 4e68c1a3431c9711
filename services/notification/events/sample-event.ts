import { randomUUID } from "node:crypto";
import { create, type DescMessage, type Registry, ScalarType } from "@bufbuild/protobuf";
import { anyPack, timestampNow } from "@bufbuild/protobuf/wkt";
import {
  ActorType,
  type EventEnvelope,
  EventEnvelopeSchema,
} from "../../../gen/codex/events/v1/envelope_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { fullName, isGlob } from "../domain/matching.js";

/** The event type TestSubscription samples when none is asked for (contract default). */
export const DEFAULT_SAMPLE_TYPE = "codex.events.v1.ProjectCreated";

/** The requested type, else the first exact pattern, else ProjectCreated. */
export function sampleType(requested: string, patterns: readonly string[]): string {
  if (requested !== "") return requested;
  const exact = patterns.find((p) => !isGlob(p));
  return exact === undefined ? DEFAULT_SAMPLE_TYPE : fullName(exact);
}

/** A payload with every top-level string field set to "sample-<field>", so templates show something. */
function samplePayload(desc: DescMessage) {
  const msg = create(desc) as unknown as Record<string, unknown>;
  for (const f of desc.fields) {
    if (f.fieldKind === "scalar" && f.scalar === ScalarType.STRING) msg[f.localName] = `sample-${f.name}`;
  }
  return msg as never;
}

/**
 * A synthetic envelope of `type` for TestSubscription: a fresh id (never a real event id), the
 * subscription's project, the caller as actor. Undefined when the type is not an event here.
 */
export function sampleEnvelope(
  registry: Registry,
  type: string,
  projectId: string,
  caller: Principal,
): EventEnvelope | undefined {
  const desc = registry.getMessage(type);
  if (desc === undefined || !type.startsWith("codex.events.")) return undefined;
  const actorType = {
    user: ActorType.USER,
    api_key: ActorType.API_KEY,
    agent: ActorType.AGENT,
    service: ActorType.SERVICE,
  };
  return create(EventEnvelopeSchema, {
    id: randomUUID(),
    type,
    aggregateType: "sample",
    aggregateId: "sample-aggregate",
    projectId,
    occurredAt: timestampNow(),
    actor: { type: actorType[caller.type], id: caller.id, displayName: caller.displayName ?? "" },
    correlationId: randomUUID(),
    payload: anyPack(desc, samplePayload(desc)),
    source: "notification-test",
  });
}
