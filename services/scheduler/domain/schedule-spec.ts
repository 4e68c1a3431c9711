import { uniqueDependencies } from "./dag.js";
import { PRIORITY_MAX, PRIORITY_MIN } from "./queue-score.js";
import { normalizeRetryPolicy, type RetryPolicyInput, type RetryPolicyValues } from "./retry-policy.js";

export type DependencyFailurePolicy = "FAIL_DEPENDENTS" | "BLOCK_DEPENDENTS";

/** How to schedule a work item, validated and with defaults applied. */
export interface ScheduleSpec {
  priority: number;
  notBefore: Date | null;
  dependsOn: string[];
  retry: RetryPolicyValues;
  dependencyFailurePolicy: DependencyFailurePolicy;
  agentSelector: Record<string, string>;
}

/** ScheduleOptions as plain values (durations in ms; undefined = unset). */
export interface ScheduleInput {
  priority: number;
  notBefore: Date | undefined;
  dependsOn: readonly string[];
  retry: RetryPolicyInput | undefined;
  dependencyFailurePolicy: DependencyFailurePolicy | undefined;
  agentSelector: Readonly<Record<string, string>>;
}

export const SCHEDULE_LIMITS = {
  dependencies: 100,
  selectorEntries: 32,
  selectorKey: 63,
  selectorValue: 256,
};

const ID = /^[A-Za-z0-9-]{1,64}$/;

/**
 * Checks ScheduleOptions against the contract. Problems come back as field violations under
 * `path` (e.g. "options" for the RPC, "" for the command) so one answer names every problem.
 */
export function toScheduleSpec(
  input: ScheduleInput,
  path: string,
): { spec: ScheduleSpec; violations: { field: string; description: string }[] } {
  const at = (f: string) => (path === "" ? f : `${path}.${f}`);
  const violations: { field: string; description: string }[] = [];
  if (!Number.isInteger(input.priority) || input.priority < PRIORITY_MIN || input.priority > PRIORITY_MAX) {
    violations.push({ field: at("priority"), description: `must be ${PRIORITY_MIN}..${PRIORITY_MAX}` });
  }
  if (input.dependsOn.length > SCHEDULE_LIMITS.dependencies) {
    violations.push({
      field: at("depends_on"),
      description: `at most ${SCHEDULE_LIMITS.dependencies} entries`,
    });
  }
  input.dependsOn.forEach((d, i) => {
    if (!ID.test(d))
      violations.push({ field: `${at("depends_on")}[${i}]`, description: "must be a work item id" });
  });
  const entries = Object.entries(input.agentSelector);
  if (entries.length > SCHEDULE_LIMITS.selectorEntries) {
    violations.push({
      field: at("agent_selector"),
      description: `at most ${SCHEDULE_LIMITS.selectorEntries} entries`,
    });
  }
  for (const [k, v] of entries) {
    if (
      k.length === 0 ||
      k.length > SCHEDULE_LIMITS.selectorKey ||
      v.length > SCHEDULE_LIMITS.selectorValue
    ) {
      violations.push({
        field: `${at("agent_selector")}["${k}"]`,
        description: `key 1-${SCHEDULE_LIMITS.selectorKey} characters, value at most ${SCHEDULE_LIMITS.selectorValue}`,
      });
    }
  }
  const { policy, problems } = normalizeRetryPolicy(input.retry);
  for (const [f, d] of problems) violations.push({ field: `${at("retry_policy")}.${f}`, description: d });
  return {
    spec: {
      priority: input.priority,
      notBefore: input.notBefore ?? null,
      dependsOn: uniqueDependencies(input.dependsOn),
      retry: policy,
      dependencyFailurePolicy: input.dependencyFailurePolicy ?? "FAIL_DEPENDENTS",
      agentSelector: { ...input.agentSelector },
    },
    violations,
  };
}
