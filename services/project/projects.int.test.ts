import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProjectState } from "../../gen/codex/project/v1/project_pb.js";
import { Code } from "../../mesh/errors.js";
import { badFields, failure, type Harness, projectWithTeam, startHarness } from "./test-support.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ MAX_PROJECTS_PER_PRINCIPAL: "8" });
});
afterAll(async () => h?.stop());

describe("CreateProject", () => {
  it("creates an ACTIVE project owned by the caller, display name defaulting to the name", async () => {
    const { project } = await h.as.owner.createProject({
      project: { name: "alpha", description: "first", labels: { team: "core" } },
    });
    expect(project?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(project).toMatchObject({
      name: "alpha",
      displayName: "alpha",
      description: "first",
      state: ProjectState.ACTIVE,
      createdBy: "alice",
      labels: { team: "core" },
    });
    expect(project?.etag).not.toBe("");
    const role = await h.as.service.getMemberRole({ projectId: project!.id, principalId: "alice" });
    expect(role.role).toBe(1);
  });

  it("refuses a taken name with ALREADY_EXISTS", async () => {
    await h.as.owner.createProject({ project: { name: "taken" } });
    await failure(h.as.maintainer.createProject({ project: { name: "taken" } }), Code.ALREADY_EXISTS);
  });

  it("names every bad field", async () => {
    const err = await failure(
      h.as.owner.createProject({
        project: { name: "Bad_Name", displayName: "x".repeat(201), labels: { Key: "v" } },
        requestId: "not-a-uuid",
      }),
      Code.INVALID_ARGUMENT,
    );
    expect(badFields(err)).toEqual([
      "project.name",
      "project.display_name",
      'project.labels["Key"]',
      "request_id",
    ]);
    const missing = await failure(h.as.owner.createProject({}), Code.INVALID_ARGUMENT);
    expect(badFields(missing)).toEqual(["project"]);
  });

  it("replays a request_id: same project, no second creation; another request with it is refused", async () => {
    const requestId = randomUUID();
    const first = await h.as.owner.createProject({ project: { name: "replayed" }, requestId });
    const again = await h.as.owner.createProject({ project: { name: "replayed" }, requestId });
    expect(again.project?.id).toBe(first.project?.id);
    expect(again.project?.etag).toBe(first.project?.etag);
    const err = await failure(
      h.as.owner.createProject({ project: { name: "other-name" }, requestId }),
      Code.INVALID_ARGUMENT,
    );
    expect(badFields(err)).toEqual(["request_id"]);
  });

  it("requires an authenticated user", async () => {
    await failure(h.as.anonymous.createProject({ project: { name: "anon" } }), Code.UNAUTHENTICATED);
    await failure(h.as.agent.createProject({ project: { name: "by-agent" } }), Code.PERMISSION_DENIED);
    const key = h.clientFor({ type: "api_key", id: "k1" });
    await failure(key.createProject({ project: { name: "by-key" } }), Code.PERMISSION_DENIED);
  });

  it("limits active projects per user with RESOURCE_EXHAUSTED", async () => {
    const dave = h.clientFor({ type: "user", id: "dave" });
    for (let i = 0; i < 8; i++) await dave.createProject({ project: { name: `dave-${i}` } });
    await failure(dave.createProject({ project: { name: "dave-9" } }), Code.RESOURCE_EXHAUSTED);
  });
});

describe("GetProject", () => {
  it("answers members, hides the project from non-members, refuses the anonymous", async () => {
    const p = await projectWithTeam(h, "visible");
    expect((await h.as.viewer.getProject({ projectId: p.id })).project?.name).toBe("visible");
    expect((await h.as.service.getProject({ projectId: p.id })).project?.name).toBe("visible");
    await failure(h.as.outsider.getProject({ projectId: p.id }), Code.NOT_FOUND);
    await failure(h.as.owner.getProject({ projectId: randomUUID() }), Code.NOT_FOUND);
    await failure(h.as.anonymous.getProject({ projectId: p.id }), Code.UNAUTHENTICATED);
    const bad = await failure(h.as.owner.getProject({ projectId: "nope" }), Code.INVALID_ARGUMENT);
    expect(badFields(bad)).toEqual(["project_id"]);
  });

  it("lets API keys in through their signed project roles", async () => {
    const p = await projectWithTeam(h, "keyed");
    const key = h.clientFor({ type: "api_key", id: "k2", projectRoles: { [p.id]: "VIEWER" } });
    expect((await key.getProject({ projectId: p.id })).project?.id).toBe(p.id);
    await failure(
      key.updateProject({ project: { id: p.id, description: "x" }, updateMask: { paths: ["description"] } }),
      Code.PERMISSION_DENIED,
    );
  });
});

describe("ListProjects", () => {
  it("lists only the caller's projects, by name, across pages with stable tokens", async () => {
    const erin = h.clientFor({ type: "user", id: "erin" });
    for (const n of ["list-c", "list-a", "list-b"])
      await erin.createProject({ project: { name: n, labels: { k: "v" } } });
    const first = await erin.listProjects({ pageSize: 2 });
    expect(first.projects.map((p) => p.name)).toEqual(["list-a", "list-b"]);
    const second = await erin.listProjects({ pageSize: 2, pageToken: first.nextPageToken });
    expect(second.projects.map((p) => p.name)).toEqual(["list-c"]);
    expect(second.nextPageToken).toBe("");
    const filtered = await erin.listProjects({ namePrefix: "list-b", labels: { k: "v" } });
    expect(filtered.projects.map((p) => p.name)).toEqual(["list-b"]);
    const outsiders = await h.as.outsider.listProjects({});
    expect(outsiders.projects).toEqual([]);
    const all = await h.as.service.listProjects({ namePrefix: "list-", pageSize: 500 });
    expect(all.projects.length).toBe(3);
  });

  it("refuses bad page sizes, foreign tokens and bad filters", async () => {
    const first = await h.as.owner.listProjects({ pageSize: 1 });
    const changed = await failure(
      h.as.owner.listProjects({ pageSize: 1, pageToken: first.nextPageToken, namePrefix: "a" }),
      Code.INVALID_ARGUMENT,
    );
    expect(badFields(changed)).toEqual(["page_token"]);
    const bad = await failure(
      h.as.owner.listProjects({
        pageSize: -1,
        pageToken: "garbage",
        namePrefix: "UP",
        state: 9 as ProjectState,
      }),
      Code.INVALID_ARGUMENT,
    );
    expect(badFields(bad)).toEqual(["page_size", "state", "name_prefix", "page_token"]);
  });
});

describe("UpdateProject", () => {
  it("changes masked fields, bumps the etag and refuses a stale one with ABORTED", async () => {
    const p = await projectWithTeam(h, "updatable");
    const { project } = await h.as.maintainer.updateProject({
      project: { id: p.id, displayName: "Updatable", description: "ignored", etag: p.etag },
      updateMask: { paths: ["display_name"] },
    });
    expect(project).toMatchObject({ displayName: "Updatable", description: "" });
    expect(project?.etag).not.toBe(p.etag);
    await failure(
      h.as.maintainer.updateProject({
        project: { id: p.id, description: "late", etag: p.etag },
        updateMask: { paths: ["description"] },
      }),
      Code.ABORTED,
    );
  });

  it("refuses viewers, empty and unknown mask paths", async () => {
    const p = await projectWithTeam(h, "guarded");
    const mask = { paths: ["description"] };
    await failure(
      h.as.viewer.updateProject({ project: { id: p.id, description: "x" }, updateMask: mask }),
      Code.PERMISSION_DENIED,
    );
    await failure(
      h.as.outsider.updateProject({ project: { id: p.id, description: "x" }, updateMask: mask }),
      Code.NOT_FOUND,
    );
    const empty = await failure(h.as.owner.updateProject({ project: { id: p.id } }), Code.INVALID_ARGUMENT);
    expect(badFields(empty)).toEqual(["update_mask"]);
    const unknown = await failure(
      h.as.owner.updateProject({
        project: { id: p.id, name: "renamed" },
        updateMask: { paths: ["description", "name"] },
      }),
      Code.INVALID_ARGUMENT,
    );
    expect(badFields(unknown)).toEqual(["update_mask.paths[1]"]);
  });
});

describe("ArchiveProject", () => {
  it("archives with the current etag (OWNER only) and makes the project read-only", async () => {
    const p = await projectWithTeam(h, "archivable");
    await failure(h.as.maintainer.archiveProject({ projectId: p.id, etag: p.etag }), Code.PERMISSION_DENIED);
    const missingEtag = await failure(h.as.owner.archiveProject({ projectId: p.id }), Code.INVALID_ARGUMENT);
    expect(badFields(missingEtag)).toEqual(["etag"]);
    const { project } = await h.as.owner.archiveProject({ projectId: p.id, etag: p.etag, reason: "done" });
    expect(project?.state).toBe(ProjectState.ARCHIVED);
    expect(project?.archiveTime).toBeDefined();
    await failure(
      h.as.owner.archiveProject({ projectId: p.id, etag: project!.etag }),
      Code.FAILED_PRECONDITION,
    );
    await failure(
      h.as.owner.updateProject({
        project: { id: p.id, description: "x" },
        updateMask: { paths: ["description"] },
      }),
      Code.FAILED_PRECONDITION,
    );
    expect((await h.as.viewer.getProject({ projectId: p.id })).project?.state).toBe(ProjectState.ARCHIVED);
  });

  it("refuses a stale etag with ABORTED", async () => {
    const p = await projectWithTeam(h, "archive-race");
    await h.as.owner.updateProject({
      project: { id: p.id, description: "moved on" },
      updateMask: { paths: ["description"] },
    });
    await failure(h.as.owner.archiveProject({ projectId: p.id, etag: p.etag }), Code.ABORTED);
  });
});
