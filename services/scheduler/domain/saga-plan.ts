/**
 * The WorkItemCreation saga as data, and the pure rule that says what to do next from what is
 * persisted. The runner re-derives its next move from the stored states after every step, so
 * a saga resumed after a crash takes exactly the path it would have taken without one.
 */

export const WORK_ITEM_CREATION = "WorkItemCreation";

export const STEP_NAMES = [
  "create_work_item",
  "set_tool_recipe",
  "reserve_quota",
  "schedule_task",
  "notify",
] as const;
export type StepName = (typeof STEP_NAMES)[number];

export type SagaStateName = "RUNNING" | "COMPLETED" | "COMPENSATING" | "COMPENSATED" | "FAILED";
export type StepStateName =
  | "PENDING"
  | "RUNNING"
  | "SUCCEEDED"
  | "FAILED"
  | "COMPENSATING"
  | "COMPENSATED"
  | "COMPENSATION_FAILED"
  | "SKIPPED";

export type NextMove =
  | { kind: "run"; idx: number }
  | { kind: "compensate"; idx: number }
  | { kind: "finish"; state: "COMPLETED" | "COMPENSATED" }
  | { kind: "none" };

export function isTerminal(state: SagaStateName): boolean {
  return state === "COMPLETED" || state === "COMPENSATED" || state === "FAILED";
}

/**
 * RUNNING: the first step not yet done runs (again, if it was RUNNING when the process died:
 * every action is idempotent by its request id). COMPENSATING: the latest step that succeeded
 * (or whose compensation was interrupted) is compensated, in reverse order. Nothing left:
 * the saga finishes.
 */
export function nextMove(state: SagaStateName, steps: readonly StepStateName[]): NextMove {
  if (state === "RUNNING") {
    const idx = steps.findIndex((s) => s === "PENDING" || s === "RUNNING");
    return idx === -1 ? { kind: "finish", state: "COMPLETED" } : { kind: "run", idx };
  }
  if (state === "COMPENSATING") {
    for (let i = steps.length - 1; i >= 0; i--) {
      if (steps[i] === "SUCCEEDED" || steps[i] === "COMPENSATING") return { kind: "compensate", idx: i };
    }
    return { kind: "finish", state: "COMPENSATED" };
  }
  return { kind: "none" };
}
