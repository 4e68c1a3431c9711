import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildBlocker, RequirementsState } from "../../gen/codex/project/v1/requirements_pb.js";
import { Code } from "../../mesh/errors.js";
import { createPool } from "../../mesh/postgres/pool.js";
import { badFields, failure, type Harness, projectWithTeam, startHarness } from "./test-support.js";

let h: Harness;

/** Makes agent-7 an AGENT member: agents read projects, they never change them. */
async function addAgent(projectId: string): Promise<void> {
  await h.as.owner.addMember({ projectId, member: { principalId: "agent-7", principalType: 2, role: 4 } });
}

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.stop());

describe("vision", () => {
  it("versions submissions, reads current and past versions, and lists newest first", async () => {
    const p = await projectWithTeam(h, "visionary");
    await addAgent(p.id);
    await failure(h.as.viewer.getVision({ projectId: p.id }), Code.NOT_FOUND);
    const v1 = await h.as.maintainer.submitVision({ projectId: p.id, vision: { problem: "slow builds" } });
    expect(v1.vision).toMatchObject({ version: 1n, problem: "slow builds", author: "bob" });
    const v2 = await h.as.owner.submitVision({
      projectId: p.id,
      vision: { problem: "slow builds", constraints: "no new infra", successCriteria: "p95 < 5m" },
      baseVersion: 1n,
    });
    expect(v2.vision?.version).toBe(2n);
    expect((await h.as.agent.getVision({ projectId: p.id })).vision?.version).toBe(2n);
    await failure(
      h.as.agent.submitVision({ projectId: p.id, vision: { problem: "mine" } }),
      Code.PERMISSION_DENIED,
    );
    expect((await h.as.viewer.getVision({ projectId: p.id, version: 1n })).vision?.constraints).toBe("");
    await failure(h.as.viewer.getVision({ projectId: p.id, version: 3n }), Code.NOT_FOUND);
    const page = await h.as.viewer.listVisionVersions({ projectId: p.id, pageSize: 1 });
    expect(page.visions.map((v) => v.version)).toEqual([2n]);
    const next = await h.as.viewer.listVisionVersions({
      projectId: p.id,
      pageSize: 1,
      pageToken: page.nextPageToken,
    });
    expect(next.visions.map((v) => v.version)).toEqual([1n]);
    expect(next.nextPageToken).toBe("");
  });

  it("replays a request_id for 24 hours, then treats it as new", async () => {
    const p = await projectWithTeam(h, "vision-replay");
    const req = { projectId: p.id, vision: { problem: "once" }, requestId: randomUUID() };
    const first = await h.as.maintainer.submitVision(req);
    const replay = await h.as.maintainer.submitVision(req);
    expect(replay.vision?.version).toBe(first.vision?.version);
    // Another principal's identical request_id is its own key, not a replay.
    expect((await h.as.owner.submitVision(req)).vision?.version).toBe(2n);
    const pool = createPool({ url: "postgres://root@127.0.0.1:5432/test", schema: h.schema });
    try {
      await pool.query("UPDATE idempotency_keys SET create_time = create_time - interval '25 hours'");
    } finally {
      await pool.end();
    }
    expect((await h.as.maintainer.submitVision(req)).vision?.version).toBe(3n);
  });

  it("refuses a stale base_version (ABORTED), viewers, and bad content", async () => {
    const p = await projectWithTeam(h, "vision-guard");
    await h.as.maintainer.submitVision({ projectId: p.id, vision: { problem: "p" } });
    await failure(
      h.as.maintainer.submitVision({ projectId: p.id, vision: { problem: "q" }, baseVersion: 7n }),
      Code.ABORTED,
    );
    await failure(
      h.as.viewer.submitVision({ projectId: p.id, vision: { problem: "q" } }),
      Code.PERMISSION_DENIED,
    );
    const err = await failure(
      h.as.maintainer.submitVision({
        projectId: p.id,
        vision: { problem: "", constraints: "c".repeat(20_001) },
      }),
      Code.INVALID_ARGUMENT,
    );
    expect(badFields(err)).toEqual(["vision.problem", "vision.constraints"]);
  });
});

describe("requirements lifecycle", () => {
  it("proposes, edits with etags, approves, supersedes and gates the build", async () => {
    const p = await projectWithTeam(h, "builder");
    await addAgent(p.id);
    const blocked = await h.as.viewer.getBuildReadiness({ projectId: p.id });
    expect(blocked).toMatchObject({ ready: false, blockers: [BuildBlocker.NO_APPROVED_REQUIREMENTS] });

    const { requirements: d1 } = await h.as.maintainer.proposeRequirements({
      projectId: p.id,
      content: "v1 text",
    });
    expect(d1).toMatchObject({
      state: RequirementsState.PROPOSED,
      version: 1n,
      author: "bob",
      lastEditor: "bob",
    });
    await failure(
      h.as.maintainer.proposeRequirements({ projectId: p.id, content: "second" }),
      Code.FAILED_PRECONDITION,
    );

    const { requirements: e1 } = await h.as.owner.editRequirements({
      projectId: p.id,
      requirementsId: d1!.id,
      content: "v2 text",
      etag: d1!.etag,
    });
    expect(e1).toMatchObject({ version: 2n, content: "v2 text", lastEditor: "alice", author: "bob" });
    await failure(
      h.as.owner.editRequirements({ projectId: p.id, requirementsId: d1!.id, content: "v3", etag: d1!.etag }),
      Code.ABORTED,
    );
    const old = await h.as.viewer.getRequirements({ projectId: p.id, requirementsId: d1!.id, version: 1n });
    expect(old.requirements).toMatchObject({
      version: 1n,
      content: "v1 text",
      lastEditor: "bob",
      etag: e1!.etag,
    });

    await failure(
      h.as.maintainer.approveRequirements({ projectId: p.id, requirementsId: d1!.id, etag: e1!.etag }),
      Code.PERMISSION_DENIED,
    );
    await failure(
      h.as.owner.approveRequirements({ projectId: p.id, requirementsId: d1!.id, etag: d1!.etag }),
      Code.ABORTED,
    );
    const a1 = await h.as.owner.approveRequirements({
      projectId: p.id,
      requirementsId: d1!.id,
      etag: e1!.etag,
      reason: "ok",
    });
    expect(a1).toMatchObject({ supersededRequirementsId: "" });
    expect(a1.requirements).toMatchObject({
      state: RequirementsState.APPROVED,
      decidedBy: "alice",
      decisionReason: "ok",
    });

    // Editing an approved draft is a state problem, not a stale read: FAILED_PRECONDITION.
    await failure(
      h.as.owner.editRequirements({
        projectId: p.id,
        requirementsId: d1!.id,
        content: "x",
        etag: a1.requirements!.etag,
      }),
      Code.FAILED_PRECONDITION,
    );
    const ready = await h.as.agent.getBuildReadiness({ projectId: p.id });
    expect(ready).toMatchObject({
      ready: true,
      blockers: [],
      approvedRequirementsId: d1!.id,
      approvedRequirementsVersion: 2n,
    });
    expect(ready.approveTime).toBeDefined();

    const { requirements: d2 } = await h.as.maintainer.proposeRequirements({
      projectId: p.id,
      content: "next",
    });
    const a2 = await h.as.owner.approveRequirements({
      projectId: p.id,
      requirementsId: d2!.id,
      etag: d2!.etag,
    });
    expect(a2.supersededRequirementsId).toBe(d1!.id);
    const superseded = await h.as.viewer.getRequirements({ projectId: p.id, requirementsId: d1!.id });
    expect(superseded.requirements).toMatchObject({
      state: RequirementsState.SUPERSEDED,
      supersededBy: d2!.id,
    });

    const all = await h.as.viewer.listRequirements({ projectId: p.id });
    expect(all.requirements.map((r) => r.id)).toEqual([d2!.id, d1!.id]);
    const approvedOnly = await h.as.viewer.listRequirements({
      projectId: p.id,
      state: RequirementsState.APPROVED,
    });
    expect(approvedOnly.requirements.map((r) => r.id)).toEqual([d2!.id]);
    const page = await h.as.viewer.listRequirements({ projectId: p.id, pageSize: 1 });
    const page2 = await h.as.viewer.listRequirements({
      projectId: p.id,
      pageSize: 1,
      pageToken: page.nextPageToken,
    });
    expect([...page.requirements, ...page2.requirements].map((r) => r.id)).toEqual([d2!.id, d1!.id]);
  });

  it("rejects with a required reason and keeps rejected drafts immutable", async () => {
    const p = await projectWithTeam(h, "rejecter");
    const { requirements: d } = await h.as.maintainer.proposeRequirements({
      projectId: p.id,
      content: "draft",
    });
    const noReason = await failure(
      h.as.owner.rejectRequirements({ projectId: p.id, requirementsId: d!.id, etag: d!.etag }),
      Code.INVALID_ARGUMENT,
    );
    expect(badFields(noReason)).toEqual(["reason"]);
    const { requirements: r } = await h.as.owner.rejectRequirements({
      projectId: p.id,
      requirementsId: d!.id,
      etag: d!.etag,
      reason: "too vague",
    });
    expect(r).toMatchObject({
      state: RequirementsState.REJECTED,
      decisionReason: "too vague",
      decidedBy: "alice",
    });
    await failure(
      h.as.owner.approveRequirements({ projectId: p.id, requirementsId: d!.id, etag: r!.etag }),
      Code.FAILED_PRECONDITION,
    );
    // A rejected draft no longer blocks a new proposal.
    await h.as.maintainer.proposeRequirements({ projectId: p.id, content: "better" });
  });

  it("validates ids, content and etags, and hides drafts from outsiders", async () => {
    const p = await projectWithTeam(h, "req-guard");
    const err = await failure(
      h.as.owner.editRequirements({ projectId: p.id, requirementsId: "x", content: "" }),
      Code.INVALID_ARGUMENT,
    );
    expect(badFields(err)).toEqual(["requirements_id", "etag", "content"]);
    await failure(h.as.viewer.proposeRequirements({ projectId: p.id, content: "x" }), Code.PERMISSION_DENIED);
    await failure(h.as.outsider.listRequirements({ projectId: p.id }), Code.NOT_FOUND);
    await failure(
      h.as.viewer.getRequirements({ projectId: p.id, requirementsId: randomUUID() }),
      Code.NOT_FOUND,
    );
  });

  it("blocks the build of an archived project and refuses its changes", async () => {
    const p = await projectWithTeam(h, "req-archived");
    const { requirements: d } = await h.as.maintainer.proposeRequirements({ projectId: p.id, content: "r" });
    await h.as.owner.approveRequirements({ projectId: p.id, requirementsId: d!.id, etag: d!.etag });
    const { project } = await h.as.owner.getProject({ projectId: p.id });
    await h.as.owner.archiveProject({ projectId: p.id, etag: project!.etag });
    const r = await h.as.viewer.getBuildReadiness({ projectId: p.id });
    expect(r).toMatchObject({
      ready: false,
      blockers: [BuildBlocker.PROJECT_ARCHIVED],
      approvedRequirementsId: d!.id,
    });
    await failure(
      h.as.maintainer.proposeRequirements({ projectId: p.id, content: "more" }),
      Code.FAILED_PRECONDITION,
    );
    await failure(
      h.as.maintainer.submitVision({ projectId: p.id, vision: { problem: "p" } }),
      Code.FAILED_PRECONDITION,
    );
  });
});
