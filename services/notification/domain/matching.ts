/**
 * Which events a subscription receives. Pure: the consumer asks it for every event.
 *
 * Patterns follow Subscription.event_types: a pattern without a dot is compared with the
 * short name ("WorkItemStateChanged"), otherwise with the full type name; `*` matches any run
 * of characters. The notification service's own events are matched only by exact name, and
 * NotificationDelivered never: a glob such as "*" would otherwise deliver the record of each
 * delivery, which is itself delivered, and so on forever.
 */

/** Package of every event payload. */
export const EVENTS_PACKAGE = "codex.events.v1";

/** Events published by this service (notification_events.proto). */
export const OWN_EVENT_TYPES: ReadonlySet<string> = new Set([
  `${EVENTS_PACKAGE}.SubscriptionCreated`,
  `${EVENTS_PACKAGE}.SubscriptionUpdated`,
  `${EVENTS_PACKAGE}.SubscriptionDeleted`,
  `${EVENTS_PACKAGE}.NotificationDelivered`,
  `${EVENTS_PACKAGE}.NotificationDeadLettered`,
]);

export const NOTIFICATION_DELIVERED = `${EVENTS_PACKAGE}.NotificationDelivered`;
export const NOTIFICATION_DEAD_LETTERED = `${EVENTS_PACKAGE}.NotificationDeadLettered`;

/** Allowed pattern characters: type-name characters plus the `*` wildcard. */
export const PATTERN_CHARS = /^[A-Za-z0-9_.*]+$/;

/** "codex.events.v1.ProjectCreated" → "ProjectCreated". */
export function shortName(type: string): string {
  const dot = type.lastIndexOf(".");
  return dot < 0 ? type : type.slice(dot + 1);
}

/** The full name a pattern denotes when it has no wildcard: short names get the events package. */
export function fullName(pattern: string): string {
  return pattern.includes(".") ? pattern : `${EVENTS_PACKAGE}.${pattern}`;
}

export function isGlob(pattern: string): boolean {
  return pattern.includes("*");
}

function globToRegExp(glob: string): RegExp {
  const body = glob
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${body}$`);
}

/** Whether one pattern matches an event type, before the own-event rules apply. */
export function patternMatches(pattern: string, type: string): boolean {
  const subject = pattern.includes(".") ? type : shortName(type);
  return isGlob(pattern) ? globToRegExp(pattern).test(subject) : pattern === subject;
}

/** What matching needs to know about an event. */
export interface MatchableEvent {
  type: string;
  projectId: string;
  /** For NotificationDeadLettered: the subscription whose delivery failed. */
  deadLetteredSubscriptionId?: string | undefined;
}

/** What matching needs to know about a subscription. */
export interface MatchableSubscription {
  id: string;
  projectId: string;
  eventTypes: readonly string[];
}

/** Whether the subscription's project filter admits the event (empty = every project). */
export function projectMatches(
  sub: Pick<MatchableSubscription, "projectId">,
  eventProjectId: string,
): boolean {
  return sub.projectId === "" || sub.projectId === eventProjectId;
}

/** Whether the event type is admitted by the patterns, own-event rules included. */
export function typeMatches(patterns: readonly string[], type: string): boolean {
  if (type === NOTIFICATION_DELIVERED) return false;
  if (OWN_EVENT_TYPES.has(type)) return patterns.some((p) => !isGlob(p) && patternMatches(p, type));
  return patterns.some((p) => patternMatches(p, type));
}

/** Whether a (non-alert) subscription receives an event. */
export function subscriptionMatches(sub: MatchableSubscription, event: MatchableEvent): boolean {
  if (!projectMatches(sub, event.projectId)) return false;
  if (event.type === NOTIFICATION_DEAD_LETTERED && event.deadLetteredSubscriptionId === sub.id) return false;
  return typeMatches(sub.eventTypes, event.type);
}
