import { createRegistry, type Registry } from "@bufbuild/protobuf";
import { file_codex_events_v1_agent_events } from "../../../gen/codex/events/v1/agent_events_pb.js";
import { file_codex_events_v1_audit_events } from "../../../gen/codex/events/v1/audit_events_pb.js";
import { file_codex_events_v1_envelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import { file_codex_events_v1_gateway_events } from "../../../gen/codex/events/v1/gateway_events_pb.js";
import { file_codex_events_v1_notification_events } from "../../../gen/codex/events/v1/notification_events_pb.js";
import { file_codex_events_v1_project_events } from "../../../gen/codex/events/v1/project_events_pb.js";
import { file_codex_events_v1_scheduler_events } from "../../../gen/codex/events/v1/scheduler_events_pb.js";
import { file_codex_events_v1_system_events } from "../../../gen/codex/events/v1/system_events_pb.js";
import { file_codex_events_v1_workitem_events } from "../../../gen/codex/events/v1/workitem_events_pb.js";

/**
 * Every file of the codex.events.v1 package. The audit trail must be able to render any event
 * any service publishes, so a new events file has to be added here (a unit test compares this
 * list with the generated files and fails when one is missing).
 */
export const EVENT_FILES = [
  file_codex_events_v1_agent_events,
  file_codex_events_v1_audit_events,
  file_codex_events_v1_envelope,
  file_codex_events_v1_gateway_events,
  file_codex_events_v1_notification_events,
  file_codex_events_v1_project_events,
  file_codex_events_v1_scheduler_events,
  file_codex_events_v1_system_events,
  file_codex_events_v1_workitem_events,
] as const;

/** Registry resolving `google.protobuf.Any` payloads of event envelopes to their messages. */
export const eventRegistry: Registry = createRegistry(...EVENT_FILES);
