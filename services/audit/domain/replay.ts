import type { JsonObject, JsonValue } from "@bufbuild/protobuf";

/**
 * Folds one event into an aggregate's state, as ReplayAggregate documents: the payload's
 * top-level fields overwrite earlier values, and maps and lists are replaced whole (no deep
 * merge: a deep merge could resurrect a map entry an event removed). Redacted fields stay
 * "[REDACTED]". Payloads that are not JSON objects (a wrapper-type payload) carry no fields
 * and leave the state unchanged.
 */
export function foldPayload(state: JsonObject, payloadJson: string): JsonObject {
  const payload = JSON.parse(payloadJson) as JsonValue;
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return state;
  return { ...state, ...payload };
}

/** Replays a whole sequence of payloads from an empty state. */
export function replayPayloads(payloads: Iterable<string>): JsonObject {
  let state: JsonObject = {};
  for (const p of payloads) state = foldPayload(state, p);
  return state;
}
