import { durationMs, timestampDate } from "@bufbuild/protobuf/wkt";
import type { ScheduleWorkItem } from "../../../gen/codex/events/v1/scheduler_events_pb.js";
import {
  DependencyFailurePolicy,
  type RetryPolicy,
  RetryPolicy_Jitter,
  type ScheduleOptions,
} from "../../../gen/codex/scheduler/v1/task_pb.js";
import type { RetryPolicyInput } from "../domain/retry-policy.js";
import type { DependencyFailurePolicy as Policy, ScheduleInput } from "../domain/schedule-spec.js";

function retryInput(p: RetryPolicy | undefined): RetryPolicyInput | undefined {
  if (!p) return undefined;
  return {
    maxRetries: p.maxRetries,
    baseMs: p.backoffBase ? durationMs(p.backoffBase) : undefined,
    capMs: p.backoffCap ? durationMs(p.backoffCap) : undefined,
    jitter: p.jitter === RetryPolicy_Jitter.NONE ? "NONE" : "FULL",
  };
}

function policyInput(p: DependencyFailurePolicy): Policy | undefined {
  if (p === DependencyFailurePolicy.BLOCK_DEPENDENTS) return "BLOCK_DEPENDENTS";
  if (p === DependencyFailurePolicy.FAIL_DEPENDENTS) return "FAIL_DEPENDENTS";
  return undefined;
}

/** ScheduleOptions (RPC, saga) as plain values. */
export function fromOptions(o: ScheduleOptions | undefined): ScheduleInput {
  return {
    priority: o?.priority ?? 0,
    notBefore: o?.notBefore ? timestampDate(o.notBefore) : undefined,
    dependsOn: o?.dependsOn ?? [],
    retry: retryInput(o?.retryPolicy),
    dependencyFailurePolicy: policyInput(o?.dependencyFailurePolicy ?? DependencyFailurePolicy.UNSPECIFIED),
    agentSelector: o?.agentSelector ?? {},
  };
}

/** The ScheduleWorkItem command as plain values. */
export function fromCommand(c: ScheduleWorkItem): ScheduleInput {
  return {
    priority: c.priority,
    notBefore: c.notBefore ? timestampDate(c.notBefore) : undefined,
    dependsOn: c.dependencies,
    retry: retryInput(c.retryPolicy),
    dependencyFailurePolicy: policyInput(c.dependencyFailurePolicy),
    agentSelector: c.agentSelector,
  };
}
