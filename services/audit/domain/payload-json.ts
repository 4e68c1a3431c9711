import { createHash } from "node:crypto";
import { fromBinary, type Registry, toJson } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import { mayNeedRedaction, redactMessageJson } from "./redact.js";

/** The fully-qualified message name of an Any's type URL ("type.googleapis.com/a.b.C" → "a.b.C"). */
export function anyTypeName(any: Any | undefined): string {
  const url = any?.typeUrl ?? "";
  return url.slice(url.lastIndexOf("/") + 1);
}

/**
 * Renders an event payload as the trail stores it: proto3 JSON with proto field names and
 * default values emitted, secrets replaced by "[REDACTED]" (see redact.ts).
 *
 * A payload the audit service cannot decode (a type newer than this build, or bytes that do
 * not parse) is still recorded, so the trail stays complete, but as a placeholder carrying only
 * its type, size and SHA-256: the raw bytes may hold secrets we cannot find without a schema,
 * and base64 is not redaction. The `@`-prefixed keys cannot collide with proto field names.
 */
export function payloadJson(payload: Any | undefined, registry: Registry): string {
  if (payload === undefined) return "{}";
  const typeName = anyTypeName(payload);
  const desc = registry.getMessage(typeName);
  if (desc === undefined) return placeholder(payload, typeName, "type unknown to the audit service");
  try {
    const message = fromBinary(desc, payload.value, { readUnknownFields: false });
    const json = toJson(desc, message, { useProtoFieldName: true, alwaysEmitImplicit: true, registry });
    return JSON.stringify(mayNeedRedaction(desc) ? redactMessageJson(desc, json, registry) : json);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return placeholder(payload, typeName, `payload could not be decoded: ${reason.slice(0, 200)}`);
  }
}

function placeholder(payload: Any, typeName: string, reason: string): string {
  return JSON.stringify({
    "@type": typeName,
    "@undecoded": reason,
    "@bytes": payload.value.length,
    "@sha256": createHash("sha256").update(payload.value).digest("hex"),
  });
}
