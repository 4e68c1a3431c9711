/**
 * Reads the fields the policy needs (the project, the member acted on) out of a decoded
 * request, by proto field name, using the method's descriptor.
 */
import type { DescField, DescMessage, Message } from "@bufbuild/protobuf";

/** Where a project id is looked for when the rule names no field. */
const DEFAULT_PROJECT_FIELDS = ["project_id", "project.id", "parent"];

/** "projects/{id}" (resource-name style) or a bare id. */
const PARENT = /^projects\/([^/]+)(?:\/.*)?$/;

/**
 * The project a request names, or `undefined` when it names none. "-" (ListMembers across
 * projects) names none: the service then filters by the caller's own memberships.
 */
export function projectOf(
  desc: DescMessage,
  request: Message | undefined,
  field?: string,
): string | undefined {
  if (request === undefined) return undefined;
  for (const path of field !== undefined ? [field] : DEFAULT_PROJECT_FIELDS) {
    const value = stringAt(desc, request, path);
    if (value === undefined || value === "" || value === "-") continue;
    if (path === "parent") return PARENT.exec(value)?.[1] ?? value;
    return value;
  }
  return undefined;
}

/** The string at a dotted proto field path, if every step exists and the leaf is a string. */
export function stringAt(desc: DescMessage, message: Message, path: string): string | undefined {
  let d: DescMessage | undefined = desc;
  let value: unknown = message;
  for (const name of path.split(".")) {
    if (d === undefined || value === undefined || value === null) return undefined;
    const f: DescField | undefined = d.fields.find((x) => x.name === name);
    if (!f) return undefined;
    value = (value as Record<string, unknown>)[f.localName];
    d = f.fieldKind === "message" ? f.message : undefined;
  }
  return typeof value === "string" ? value : undefined;
}
