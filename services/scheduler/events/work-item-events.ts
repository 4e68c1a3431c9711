import {
  ApprovalGrantedSchema,
  WorkItemStateChangedSchema,
} from "../../../gen/codex/events/v1/workitem_events_pb.js";
import { WorkItemState } from "../../../gen/codex/workitem/v1/work_item_pb.js";
import type { ConsumedMessage } from "../../../mesh/nats/consumer.js";
import { type Core, type Tx, transact } from "../core.js";
import { approvalGranted } from "../dispatch/approval.js";
import { cancelTask } from "../dispatch/cancel.js";
import { recordOutcome } from "../dispatch/dependencies.js";
import { liveTaskOf, type Outcome } from "../store/tasks.js";
import { causeOf, decode } from "./decode.js";

/**
 * WorkItemStateChanged and ApprovalGranted, once per event id (processed_events, written in the
 * transaction that applies the event): one message per transaction (the fallback of a failed
 * batch), or a batch per transaction.
 */

/** The event ids among `ids` not handled before, now marked handled (one insert for all). */
async function firstTimes(tx: Tx, ids: readonly string[]): Promise<Set<string>> {
  const { rows } = await tx.client.query<{ event_id: string }>(
    `INSERT INTO processed_events (event_id) SELECT DISTINCT unnest($1::text[])
     ON CONFLICT DO NOTHING RETURNING event_id`,
    [ids],
  );
  return new Set(rows.map((r) => r.event_id));
}

/**
 * Applies each event whose id is new, in delivery order, in one transaction (each id once, even
 * when the batch holds it twice). Throwing rolls the batch back; the consumer then retries it
 * one message per transaction.
 */
async function inOneTransaction<E extends { id: string }>(
  core: Core,
  events: readonly E[],
  apply: (tx: Tx, e: E) => Promise<void>,
): Promise<void> {
  if (events.length === 0) return;
  await transact(core, async (tx) => {
    const fresh = await firstTimes(
      tx,
      events.map((e) => e.id),
    );
    for (const e of events) {
      if (!fresh.delete(e.id)) continue;
      await apply(tx, e);
    }
  });
}

const OUTCOMES: Partial<Record<WorkItemState, Outcome>> = {
  [WorkItemState.DONE]: "DONE",
  [WorkItemState.FAILED]: "FAILED",
  [WorkItemState.CANCELLED]: "CANCELLED",
};

function stateChange(msg: ConsumedMessage) {
  const [env, e] = decode(msg, WorkItemStateChangedSchema);
  return { id: env.id, env, e };
}

/**
 * Work item news: DONE/FAILED/CANCELLED feed the dependency graph (a reviewer's accept or
 * reject included); FAILED -> QUEUED (a retry) clears a failure; CANCELLED cancels the item's
 * task; PROPOSED -> APPROVED lifts an APPROVAL wait.
 */
async function applyStateChange(core: Core, tx: Tx, { env, e }: ReturnType<typeof stateChange>) {
  const cause = causeOf(env);
  const retried = e.previousState === WorkItemState.FAILED && e.newState === WorkItemState.QUEUED;
  const outcome = retried ? "" : OUTCOMES[e.newState];
  if (outcome !== undefined && e.projectId !== "") {
    const news = {
      workItemId: e.workItemId,
      projectId: e.projectId,
      outcome,
      version: env.aggregateVersion,
    };
    await recordOutcome(core, tx, news, cause);
  }
  if (e.newState === WorkItemState.CANCELLED) {
    const t = await liveTaskOf(tx.client, e.workItemId, true);
    if (t)
      await cancelTask(
        core,
        tx,
        t,
        { reason: e.reason || "work item cancelled", workItemCancelled: true },
        cause,
      );
  }
  if (e.previousState === WorkItemState.PROPOSED && e.newState === WorkItemState.APPROVED) {
    await approvalGranted(core, tx, e.workItemId, cause);
  }
}

function grant(msg: ConsumedMessage) {
  const [env, e] = decode(msg, ApprovalGrantedSchema);
  return { id: env.id, env, e };
}

async function applyGrant(core: Core, tx: Tx, { env, e }: ReturnType<typeof grant>): Promise<void> {
  await approvalGranted(core, tx, e.workItemId, causeOf(env));
}

export const onWorkItemStateChanged = (core: Core, msg: ConsumedMessage) =>
  inOneTransaction(core, [stateChange(msg)], (tx, c) => applyStateChange(core, tx, c));

export const onWorkItemStateChangedBatch = (core: Core, msgs: ConsumedMessage[]) =>
  inOneTransaction(core, msgs.map(stateChange), (tx, c) => applyStateChange(core, tx, c));

export const onApprovalGranted = (core: Core, msg: ConsumedMessage) =>
  inOneTransaction(core, [grant(msg)], (tx, g) => applyGrant(core, tx, g));

export const onApprovalGrantedBatch = (core: Core, msgs: ConsumedMessage[]) =>
  inOneTransaction(core, msgs.map(grant), (tx, g) => applyGrant(core, tx, g));
