/**
 * Why a task waits, from facts the store gathers. A task is READY exactly when this returns no
 * reason; the same function feeds the state transition and the wait_reasons shown to people,
 * so what the queue does and what it says cannot drift apart.
 */

export type WaitKind = "DEPENDENCIES" | "APPROVAL" | "QUOTA" | "DELAY" | "BACKOFF";

export interface WaitReasonValue {
  kind: WaitKind;
  detail: string;
  /** When the wait ends by itself (DELAY, BACKOFF, QUOTA). */
  until?: Date;
  /** Work items still awaited (DEPENDENCIES). */
  workItemIds?: string[];
}

/** Everything readiness depends on. */
export interface TaskFacts {
  /** Dependencies, each with the outcome of its work item ("" while it has none). */
  dependencies: readonly { workItemId: string; outcome: "" | "DONE" | "FAILED" | "CANCELLED" }[];
  approvalPending: boolean;
  notBefore: Date | null;
  backoffUntil: Date | null;
  quotaUntil: Date | null;
  quotaDetail: string;
  /** Retry number the backoff precedes (1-based), for the detail text. */
  nextRetry: number;
  maxRetries: number;
}

const short = (id: string) => (id.length > 8 ? `${id.slice(0, 8)}…` : id);

/** The wait reasons at `now`, in a fixed order; empty means READY. */
export function waitReasons(f: TaskFacts, now: Date): WaitReasonValue[] {
  const out: WaitReasonValue[] = [];
  const pending = f.dependencies.filter((d) => d.outcome !== "DONE");
  if (pending.length > 0) {
    const failed = pending.filter((d) => d.outcome === "FAILED" || d.outcome === "CANCELLED");
    const ids = pending.map((d) => d.workItemId);
    const detail =
      failed.length > 0
        ? `blocked: dependency ${failed.map((d) => `${short(d.workItemId)} ${d.outcome}`).join(", ")}; waiting for ${pending.length} of ${f.dependencies.length} dependencies`
        : `waiting for ${pending.length} of ${f.dependencies.length} dependencies: ${ids.map(short).join(", ")}`;
    out.push({ kind: "DEPENDENCIES", detail, workItemIds: ids });
  }
  if (f.approvalPending)
    out.push({ kind: "APPROVAL", detail: "the work item is risky and not approved yet" });
  if (f.quotaUntil && f.quotaUntil > now) {
    out.push({ kind: "QUOTA", detail: f.quotaDetail || "project run quota exhausted", until: f.quotaUntil });
  }
  if (f.notBefore && f.notBefore > now) {
    out.push({ kind: "DELAY", detail: `not before ${f.notBefore.toISOString()}`, until: f.notBefore });
  }
  if (f.backoffUntil && f.backoffUntil > now) {
    out.push({
      kind: "BACKOFF",
      detail: `retry ${f.nextRetry} of ${f.maxRetries} after backoff`,
      until: f.backoffUntil,
    });
  }
  return out;
}

/**
 * When a task blocked only by time becomes eligible: the latest `until` of its reasons, or
 * undefined when some reason does not end by itself (dependencies, approval) or none is left.
 */
export function wakeTime(reasons: readonly WaitReasonValue[]): Date | undefined {
  if (reasons.length === 0) return undefined;
  let latest = 0;
  for (const r of reasons) {
    if (!r.until) return undefined;
    latest = Math.max(latest, r.until.getTime());
  }
  return new Date(latest);
}
