/**
 * Request validation as the contract states it. Pure: each check returns problems as
 * (field, description) pairs, so a caller reports all of them in one INVALID_ARGUMENT.
 */
import type { LogStream } from "../../../gen/codex/agentmanager/v1/logs_pb.js";
import type { RunState } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { COMPLETION_STATES } from "./run-state.js";

export type Problem = { field: string; description: string };

export const AGENT_NAME = /^[a-z0-9.-]{1,63}$/;
export const LABEL_KEY = /^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/;
export const FIELD_NAME = /^[A-Za-z0-9_]{1,63}$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const LIMITS = {
  labels: 64,
  labelValue: 256,
  capacityMax: 256,
  reason: 1024,
  completionError: 4 * 1024,
  chunkBytes: 64 * 1024,
  batchBytes: 1024 * 1024,
  infoFields: 32,
  answerValueBytes: 64 * 1024,
  containsMax: 256,
} as const;

export function checkLabels(labels: Readonly<Record<string, string>>, field: string): Problem[] {
  const problems: Problem[] = [];
  const keys = Object.keys(labels);
  if (keys.length > LIMITS.labels)
    problems.push({ field, description: `must have at most ${LIMITS.labels} entries` });
  for (const key of keys.slice(0, LIMITS.labels + 1)) {
    const at = `${field}[${JSON.stringify(key.slice(0, 70))}]`;
    if (!LABEL_KEY.test(key)) {
      problems.push({
        field: at,
        description:
          "key must be 1-63 characters of [a-z0-9._/-], starting and ending with a letter or digit",
      });
    }
    if ([...(labels[key] ?? "")].length > LIMITS.labelValue) {
      problems.push({ field: at, description: `value must be at most ${LIMITS.labelValue} characters` });
    }
  }
  return problems;
}

/** The registration part of an Agent. */
export interface AgentInput {
  name: string;
  labels: Record<string, string>;
  capacity: number;
  capabilities: readonly { name: string; versions: readonly string[] }[];
}

export function checkAgent(agent: AgentInput | undefined): Problem[] {
  if (agent === undefined) return [{ field: "agent", description: "is required" }];
  const problems: Problem[] = [];
  if (!AGENT_NAME.test(agent.name))
    problems.push({ field: "agent.name", description: "must be 1-63 characters of [a-z0-9.-]" });
  if (!Number.isInteger(agent.capacity) || agent.capacity < 1 || agent.capacity > LIMITS.capacityMax) {
    problems.push({ field: "agent.capacity", description: `must be 1-${LIMITS.capacityMax}` });
  }
  problems.push(...checkLabels(agent.labels, "agent.labels"));
  agent.capabilities.forEach((c, i) => {
    if (c.name.trim() === "")
      problems.push({ field: `agent.capabilities[${i}].name`, description: "is required" });
  });
  return problems;
}

export function checkReason(reason: string, field = "reason"): Problem[] {
  return [...reason].length > LIMITS.reason
    ? [{ field, description: `must be at most ${LIMITS.reason} characters` }]
    : [];
}

/** Fields of an info request: 1-32, names unique and well-formed. */
export function checkInfoFields(fields: readonly { name: string }[], field = "fields"): Problem[] {
  if (fields.length === 0) return [{ field, description: "must ask for at least one input" }];
  if (fields.length > LIMITS.infoFields)
    return [{ field, description: `must ask for at most ${LIMITS.infoFields} inputs` }];
  const problems: Problem[] = [];
  const seen = new Set<string>();
  fields.forEach((f, i) => {
    if (!FIELD_NAME.test(f.name)) {
      problems.push({ field: `${field}[${i}].name`, description: "must be 1-63 characters of [A-Za-z0-9_]" });
    } else if (seen.has(f.name)) {
      problems.push({ field: `${field}[${i}].name`, description: `duplicates "${f.name}"` });
    }
    seen.add(f.name);
  });
  return problems;
}

/**
 * An answer must give exactly the fields asked for, each value at most 64 KiB. Returns the
 * first missing or unknown field name (ANSWER_INCOMPLETE) or size problems.
 */
export function checkAnswer(
  asked: readonly string[],
  values: Readonly<Record<string, string>>,
): { incomplete?: { field: string; description: string }; problems: Problem[] } {
  for (const name of asked) {
    if (!(name in values))
      return { incomplete: { field: name, description: `no value for "${name}"` }, problems: [] };
  }
  for (const name of Object.keys(values)) {
    if (!asked.includes(name))
      return { incomplete: { field: name, description: `"${name}" was not asked for` }, problems: [] };
  }
  const problems: Problem[] = [];
  for (const [name, v] of Object.entries(values)) {
    if (Buffer.byteLength(v, "utf8") > LIMITS.answerValueBytes) {
      problems.push({ field: `values["${name}"]`, description: "must be at most 64 KiB" });
    }
  }
  return { problems };
}

export function checkCompletion(status: RunState, error: string): Problem[] {
  const problems: Problem[] = [];
  if (!COMPLETION_STATES.includes(status))
    problems.push({ field: "status", description: "must be SUCCEEDED, FAILED or CANCELLED" });
  if (Buffer.byteLength(error, "utf8") > LIMITS.completionError)
    problems.push({ field: "error", description: "must be at most 4 KiB" });
  return problems;
}

export function checkChunks(
  chunks: readonly { seq: bigint; stream: LogStream; data: Uint8Array }[],
  field = "chunks",
): Problem[] {
  const problems: Problem[] = [];
  let total = 0;
  chunks.forEach((c, i) => {
    total += c.data.length;
    if (c.data.length > LIMITS.chunkBytes)
      problems.push({ field: `${field}[${i}].data`, description: "must be at most 64 KiB" });
    if (c.seq < 1n) problems.push({ field: `${field}[${i}].seq`, description: "must be at least 1" });
  });
  if (total > LIMITS.batchBytes)
    problems.push({ field, description: "must hold at most 1 MiB of data in total" });
  return problems;
}

export function checkRequired(value: string, field: string): Problem[] {
  return value.trim() === "" ? [{ field, description: "is required" }] : [];
}

export function checkUuid(value: string, field: string): Problem[] {
  return UUID.test(value) ? [] : [{ field, description: "must be a UUID" }];
}
