import { describe, expect, it } from "vitest";
import { patternMatches, subscriptionMatches, typeMatches } from "./matching.js";

const T = (n: string) => `codex.events.v1.${n}`;

describe("event type patterns", () => {
  it("matches short names, full names and globs", () => {
    expect(patternMatches("ProjectCreated", T("ProjectCreated"))).toBe(true);
    expect(patternMatches("ProjectCreated", T("ProjectUpdated"))).toBe(false);
    expect(patternMatches(T("ProjectCreated"), T("ProjectCreated"))).toBe(true);
    expect(patternMatches("codex.events.v1.Requirements*", T("RequirementsApproved"))).toBe(true);
    expect(patternMatches("codex.events.v1.Requirements*", T("ProjectCreated"))).toBe(false);
    expect(patternMatches("*", T("ProjectCreated"))).toBe(true);
    expect(patternMatches("Work*Changed", T("WorkItemStateChanged"))).toBe(true);
    expect(patternMatches("Work*Changed", T("WorkItemCreated"))).toBe(false);
    // A dot in a pattern is literal, not "any character".
    expect(patternMatches("codex.events.v1.Project*", "codexXevents.v1.ProjectCreated")).toBe(false);
  });

  it("never matches the service's own events by glob, and NotificationDelivered never", () => {
    expect(typeMatches(["*"], T("NotificationDeadLettered"))).toBe(false);
    expect(typeMatches(["Notification*"], T("NotificationDeadLettered"))).toBe(false);
    expect(typeMatches(["*"], T("SubscriptionCreated"))).toBe(false);
    expect(typeMatches(["NotificationDeadLettered"], T("NotificationDeadLettered"))).toBe(true);
    expect(typeMatches([T("NotificationDeadLettered")], T("NotificationDeadLettered"))).toBe(true);
    expect(typeMatches(["NotificationDelivered", "*"], T("NotificationDelivered"))).toBe(false);
  });
});

describe("subscription matching", () => {
  const sub = { id: "s1", projectId: "p1", eventTypes: ["*"] };
  it("applies the project filter; an empty project means every project", () => {
    expect(subscriptionMatches(sub, { type: T("ProjectCreated"), projectId: "p1" })).toBe(true);
    expect(subscriptionMatches(sub, { type: T("ProjectCreated"), projectId: "p2" })).toBe(false);
    expect(subscriptionMatches(sub, { type: T("ProjectCreated"), projectId: "" })).toBe(false);
    const all = { ...sub, projectId: "" };
    expect(subscriptionMatches(all, { type: T("ProjectCreated"), projectId: "p2" })).toBe(true);
  });

  it("does not deliver a dead letter notice to the subscription that dead-lettered", () => {
    const s = { id: "s1", projectId: "", eventTypes: ["NotificationDeadLettered"] };
    const ev = { type: T("NotificationDeadLettered"), projectId: "" };
    expect(subscriptionMatches(s, { ...ev, deadLetteredSubscriptionId: "s1" })).toBe(false);
    expect(subscriptionMatches(s, { ...ev, deadLetteredSubscriptionId: "s2" })).toBe(true);
  });
});
