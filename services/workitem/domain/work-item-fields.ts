/**
 * Validation of the user-editable work item fields, as the contract states them. Pure: it
 * returns problems as (field, description) pairs for the caller to report all at once.
 */
export type Problem = { field: string; description: string };

export const LABEL_KEY = /^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/;
export const ENVIRONMENT = /^[a-z0-9-]{0,63}$/;
export const MAX_LABELS = 64;
export const MAX_LABEL_VALUE = 256;
export const MAX_TITLE = 200;
export const MAX_DESCRIPTION_BYTES = 64 * 1024;
export const MAX_REASON = 1024;

export function checkTitle(title: string, field = "work_item.title"): Problem[] {
  const length = [...title].length;
  if (title.trim() === "") return [{ field, description: "is required" }];
  if (length > MAX_TITLE) return [{ field, description: `must be at most ${MAX_TITLE} characters` }];
  return [];
}

export function checkDescription(description: string, field = "work_item.description"): Problem[] {
  return Buffer.byteLength(description, "utf8") > MAX_DESCRIPTION_BYTES
    ? [{ field, description: "must be at most 64 KiB" }]
    : [];
}

export function checkEnvironment(environment: string, field = "work_item.environment"): Problem[] {
  return ENVIRONMENT.test(environment)
    ? []
    : [{ field, description: "must be 0-63 characters of [a-z0-9-]" }];
}

export function checkLabels(labels: Record<string, string>, field = "work_item.labels"): Problem[] {
  const problems: Problem[] = [];
  const keys = Object.keys(labels);
  if (keys.length > MAX_LABELS)
    problems.push({ field, description: `must have at most ${MAX_LABELS} entries` });
  for (const key of keys.slice(0, MAX_LABELS + 1)) {
    if (!LABEL_KEY.test(key)) {
      problems.push({
        field: `${field}[${JSON.stringify(key.slice(0, 70))}]`,
        description:
          "key must be 1-63 characters of [a-z0-9._/-], starting and ending with a letter or digit",
      });
    }
    if ([...(labels[key] ?? "")].length > MAX_LABEL_VALUE) {
      problems.push({
        field: `${field}[${JSON.stringify(key.slice(0, 70))}]`,
        description: `value must be at most ${MAX_LABEL_VALUE} characters`,
      });
    }
  }
  return problems;
}

export function checkReason(reason: string, field = "reason"): Problem[] {
  return [...reason].length > MAX_REASON
    ? [{ field, description: `must be at most ${MAX_REASON} characters` }]
    : [];
}

/** A parsed label selector entry: `key=value` (equals) or `key` (present). */
export type LabelRequirement = [key: string, value: string | undefined];

/** Parses `key=value` / `key` entries (at most 16). */
export function parseLabelSelector(
  entries: readonly string[],
  field = "label_selector",
): {
  requirements: LabelRequirement[];
  problems: Problem[];
} {
  const problems: Problem[] = [];
  const requirements: LabelRequirement[] = [];
  if (entries.length > 16) problems.push({ field, description: "must have at most 16 entries" });
  entries.slice(0, 16).forEach((entry, i) => {
    const eq = entry.indexOf("=");
    const key = eq < 0 ? entry : entry.slice(0, eq);
    const value = eq < 0 ? undefined : entry.slice(eq + 1);
    if (!LABEL_KEY.test(key)) {
      problems.push({
        field: `${field}[${i}]`,
        description: 'must be "key=value" or "key" with a valid label key',
      });
    } else if (value !== undefined && [...value].length > MAX_LABEL_VALUE) {
      problems.push({
        field: `${field}[${i}]`,
        description: `value must be at most ${MAX_LABEL_VALUE} characters`,
      });
    } else {
      requirements.push([key, value]);
    }
  });
  return { requirements, problems };
}

/** Ids are UUIDs; anything else cannot name a stored resource. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Project ids come from the project service; accept its UUIDs and other safe opaque ids. */
export const PROJECT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
