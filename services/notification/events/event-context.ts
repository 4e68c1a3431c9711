import { create, type JsonObject, type Registry, toJson } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { type EventEnvelope, EventEnvelopeSchema } from "../../../gen/codex/events/v1/envelope_pb.js";
import type { TemplateContext } from "../domain/template.js";

/**
 * An event as templates and alert rules see it: envelope fields and the payload as proto JSON
 * with proto field names (`payload.changed_fields.0`, `event.actor.display_name`), implicit
 * defaults included so a field that is empty renders as "" rather than being absent.
 */
export interface EventView {
  envelope: EventEnvelope;
  /** Envelope fields without the payload. */
  event: JsonObject;
  /** Undefined when the payload's type is not in the registry (or there is none). */
  payload: JsonObject | undefined;
}

const JSON_OPTS = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;

/** The whole view, for rendering a template (worker/prepare.ts). */
export function viewOf(envelope: EventEnvelope, registry: Registry): EventView {
  const bare = create(EventEnvelopeSchema, { ...envelope, payload: undefined });
  const event = toJson(EventEnvelopeSchema, bare, { ...JSON_OPTS, registry }) as JsonObject;
  return { envelope, event, payload: payloadOf(envelope, registry) };
}

/**
 * The payload alone as proto JSON, as alert rules and dead-letter matching read it. The consumer
 * calls this only for an event some subscription may want: converting every event of the mesh
 * to JSON was most of what consuming cost.
 */
export function payloadOf(envelope: EventEnvelope, registry: Registry): JsonObject | undefined {
  if (envelope.payload === undefined) return undefined;
  const msg = anyUnpack(envelope.payload, registry);
  if (msg === undefined) return undefined;
  const desc = registry.getMessage(msg.$typeName);
  return desc === undefined ? undefined : (toJson(desc, msg, { ...JSON_OPTS, registry }) as JsonObject);
}

/** Values of the `alert.` template root. */
export interface AlertView {
  kind: string;
  count: number;
  threshold: number;
  /** e.g. "1h". */
  window: string;
  key: string;
}

/** The subscription fields templates may use. */
export interface SubscriptionView {
  id: string;
  displayName: string;
  projectId: string;
}

export function templateContext(view: EventView, sub: SubscriptionView, alert?: AlertView): TemplateContext {
  const ctx: TemplateContext = {
    event: view.event,
    payload: view.payload ?? {},
    subscription: { id: sub.id, display_name: sub.displayName, project_id: sub.projectId },
  };
  if (alert !== undefined) ctx.alert = alert;
  return ctx;
}
