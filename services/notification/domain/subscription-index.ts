import type { AlertKind } from "../../../gen/codex/notification/v1/subscription_pb.js";
import { countedTypes } from "./alert-rules.js";
import { typeMatches } from "./matching.js";

/** What the consumer needs of a live, enabled subscription to decide whether an event concerns it. */
export interface IndexedSubscription {
  seq: bigint;
  id: string;
  /** "" = every project. */
  projectId: string;
  eventTypes: readonly string[];
  /** The rule's numbers when this is an alert subscription (its patterns are then not used). */
  alertRule: { kind: AlertKind; threshold: number; windowMs: number; cooldownMs: number } | null;
}

/** The subscriptions an event of one (project, type) may concern, in subscription order. */
export interface Candidates {
  /** Plain subscriptions whose project filter and patterns admit the event. */
  plain: readonly IndexedSubscription[];
  /** Alert subscriptions of the event's project (or all projects) whose kind counts the type. */
  alerts: readonly IndexedSubscription[];
}

const NONE: Candidates = Object.freeze({ plain: Object.freeze([]), alerts: Object.freeze([]) });

/** Distinct (project, type) pairs remembered before the memo starts over. */
const MEMO_LIMIT = 10_000;

/**
 * An immutable in-memory view of the live, enabled subscriptions, as of `changeCount` (the
 * `subscription_changes` counter read in the same snapshot as the rows).
 *
 * Why: the consumer sees every event of the mesh (four per run), and almost none concern any
 * subscription. Answering "who wants this event" from memory makes such an event cost a decode
 * and a map lookup, with no SQL. Matching runs once per distinct (project, type) and is memoized,
 * so glob patterns are not re-evaluated per event.
 */
export class SubscriptionIndex {
  readonly changeCount: bigint;
  readonly size: number;
  readonly #byProject = new Map<string, IndexedSubscription[]>();
  readonly #memo = new Map<string, Candidates>();

  constructor(changeCount: bigint, subscriptions: readonly IndexedSubscription[]) {
    this.changeCount = changeCount;
    this.size = subscriptions.length;
    const ordered = [...subscriptions].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
    for (const s of ordered) {
      const list = this.#byProject.get(s.projectId);
      if (list === undefined) this.#byProject.set(s.projectId, [s]);
      else list.push(s);
    }
  }

  /** The subscriptions an event of `type` in `projectId` may concern (see {@link Candidates}). */
  candidates(projectId: string, type: string): Candidates {
    if (this.size === 0) return NONE;
    const key = `${projectId}\u0000${type}`;
    const hit = this.#memo.get(key);
    if (hit !== undefined) return hit;
    const found = this.#compute(projectId, type);
    if (this.#memo.size >= MEMO_LIMIT) this.#memo.clear();
    this.#memo.set(key, found);
    return found;
  }

  #compute(projectId: string, type: string): Candidates {
    const global = this.#byProject.get("") ?? [];
    const own = projectId === "" ? [] : (this.#byProject.get(projectId) ?? []);
    if (global.length === 0 && own.length === 0) return NONE;
    const plain: IndexedSubscription[] = [];
    const alerts: IndexedSubscription[] = [];
    for (const s of mergeBySeq(global, own)) {
      if (s.alertRule !== null) {
        if (countedTypes(s.alertRule.kind).includes(type)) alerts.push(s);
      } else if (typeMatches(s.eventTypes, type)) {
        plain.push(s);
      }
    }
    return plain.length === 0 && alerts.length === 0 ? NONE : { plain, alerts };
  }
}

function mergeBySeq(a: IndexedSubscription[], b: IndexedSubscription[]): IndexedSubscription[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  return [...a, ...b].sort((x, y) => (x.seq < y.seq ? -1 : x.seq > y.seq ? 1 : 0));
}
