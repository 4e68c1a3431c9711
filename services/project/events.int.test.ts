import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActorType, type EventEnvelope } from "../../gen/codex/events/v1/envelope_pb.js";
import { ProjectCreatedSchema, QuotaExhaustedSchema } from "../../gen/codex/events/v1/project_events_pb.js";
import { Code } from "../../mesh/errors.js";
import { decodeEnvelope, unpackPayload } from "../../mesh/events/envelope.js";
import { DurableConsumer } from "../../mesh/nats/consumer.js";
import { eventually } from "../../mesh/nats/testing.js";
import { failure, type Harness, startHarness } from "./test-support.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.stop());

/** Drives every state change once (plus replays and refusals that must not publish twice). */
async function scenario() {
  const { owner, service } = h.as;
  const requestId = randomUUID();
  const { project } = await owner.createProject({ project: { name: "evented" }, requestId });
  await owner.createProject({ project: { name: "evented" }, requestId }); // replay: no event
  const pid = project!.id;
  await owner.updateProject({
    project: { id: pid, description: "d" },
    updateMask: { paths: ["description"] },
  });
  await owner.addMember({ projectId: pid, member: { principalId: "bob", principalType: 1, role: 3 } });
  await owner.updateMemberRole({ projectId: pid, principalId: "bob", role: 2 });
  await owner.submitVision({ projectId: pid, vision: { problem: "p" } });
  const { requirements: d1 } = await owner.proposeRequirements({ projectId: pid, content: "one" });
  const { requirements: e1 } = await owner.editRequirements({
    projectId: pid,
    requirementsId: d1!.id,
    content: "one, edited",
    etag: d1!.etag,
  });
  await owner.approveRequirements({ projectId: pid, requirementsId: d1!.id, etag: e1!.etag });
  const { requirements: d2 } = await owner.proposeRequirements({ projectId: pid, content: "two" });
  await owner.rejectRequirements({ projectId: pid, requirementsId: d2!.id, etag: d2!.etag, reason: "no" });
  const { requirements: d3 } = await owner.proposeRequirements({ projectId: pid, content: "three" });
  await owner.approveRequirements({ projectId: pid, requirementsId: d3!.id, etag: d3!.etag });
  await owner.removeMember({ projectId: pid, principalId: "bob" });
  await owner.setQuota({ projectId: pid, quota: { runsPerDay: 0, maxConcurrentRuns: 1 } });
  await service.reserveRunSlot({ projectId: pid, reservationKey: "k1", workItemId: "w1" });
  await service.reserveRunSlot({ projectId: pid, reservationKey: "k1", workItemId: "w1" }); // replay: no event
  await failure(
    service.reserveRunSlot({ projectId: pid, reservationKey: "k2", workItemId: "w2" }),
    Code.RESOURCE_EXHAUSTED,
  );
  await failure(
    service.reserveRunSlot({ projectId: pid, reservationKey: "k3", workItemId: "w3" }),
    Code.RESOURCE_EXHAUSTED,
  );
  await service.releaseRunSlot({ projectId: pid, reservationKey: "k1", consumed: true });
  const { project: current } = await owner.getProject({ projectId: pid });
  await owner.archiveProject({ projectId: pid, etag: current!.etag, reason: "done" });
  return { pid, d1: d1!.id, d2: d2!.id, d3: d3!.id };
}

describe("events", () => {
  it("publishes each state change exactly once, through the outbox, with the right aggregate", async () => {
    const { pid, d1, d2, d3 } = await scenario();
    const expected = [
      ["ProjectCreated", "project", pid],
      ["MemberAdded", "member", `${pid}:alice`],
      ["ProjectUpdated", "project", pid],
      ["MemberAdded", "member", `${pid}:bob`],
      ["MemberRoleChanged", "member", `${pid}:bob`],
      ["VisionSubmitted", "vision", pid],
      ["RequirementsProposed", "requirements", d1],
      ["RequirementsEdited", "requirements", d1],
      ["RequirementsApproved", "requirements", d1],
      ["RequirementsProposed", "requirements", d2],
      ["RequirementsRejected", "requirements", d2],
      ["RequirementsProposed", "requirements", d3],
      ["RequirementsSuperseded", "requirements", d1],
      ["RequirementsApproved", "requirements", d3],
      ["MemberRemoved", "member", `${pid}:bob`],
      ["QuotaSet", "quota", pid],
      ["RunSlotReserved", "quota", pid],
      ["QuotaExhausted", "quota", pid],
      ["RunSlotReleased", "quota", pid],
      ["ProjectArchived", "project", pid],
    ];

    const received: { envelope: EventEnvelope; subject: string }[] = [];
    const consumer = new DurableConsumer({
      nc: h.nc,
      stream: h.subjects.streams.events,
      durable: "project-events-test",
      filterSubjects: [h.subjects.filters.events],
      dlqSubject: h.subjects.dlq("project-events-test"),
      handler: async (m) => void received.push({ envelope: decodeEnvelope(m.data), subject: m.subject }),
    });
    await consumer.start();
    try {
      await eventually("all events consumed", () => received.length >= expected.length);
      // Give duplicates, if any, time to show up before counting.
      await new Promise((r) => setTimeout(r, 1_500));
    } finally {
      await consumer.stop();
    }

    const got = received.map(({ envelope: e }) => [
      e.type.replace("codex.events.v1.", ""),
      e.aggregateType,
      e.aggregateId,
    ]);
    expect(got).toEqual(expected);
    for (const { envelope: e, subject } of received) {
      const name = e.type.replace("codex.events.v1.", "");
      expect(subject).toBe(h.subjects.event(e.aggregateType, name));
      expect(e).toMatchObject({ source: "project", projectId: pid });
      expect(e.actor?.type).toBe(
        name.startsWith("RunSlot") || name === "QuotaExhausted" ? ActorType.SERVICE : ActorType.USER,
      );
    }
    expect(new Set(received.map((r) => r.envelope.id)).size).toBe(received.length);

    const projectVersions = received
      .filter((r) => r.envelope.aggregateType === "project")
      .map((r) => r.envelope.aggregateVersion);
    expect(projectVersions).toEqual([1n, 2n, 3n]);
    const created = unpackPayload(received[0]!.envelope, ProjectCreatedSchema);
    expect(created).toMatchObject({ projectId: pid, name: "evented", createdBy: "alice" });
    expect(created?.timestamp).toEqual(received[0]!.envelope.occurredAt);
    const exhausted = received.find((r) => r.envelope.type.endsWith("QuotaExhausted"))!.envelope;
    expect(unpackPayload(exhausted, QuotaExhaustedSchema)).toMatchObject({
      limit: "max_concurrent_runs",
      limitValue: 1,
    });
  });
});
