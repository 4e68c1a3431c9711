import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemberRole, PrincipalType } from "../../gen/codex/project/v1/member_pb.js";
import { ProjectState } from "../../gen/codex/project/v1/project_pb.js";
import { Code } from "../../mesh/errors.js";
import { badFields, failure, type Harness, projectWithTeam, startHarness } from "./test-support.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.stop());

describe("AddMember", () => {
  it("adds a member (OWNER only) and refuses duplicates with ALREADY_EXISTS", async () => {
    const p = await projectWithTeam(h, "team");
    const { member } = await h.as.owner.addMember({
      projectId: p.id,
      member: { principalId: "agent-7", principalType: PrincipalType.AGENT, role: MemberRole.AGENT },
    });
    expect(member).toMatchObject({
      projectId: p.id,
      principalId: "agent-7",
      role: MemberRole.AGENT,
      addedBy: "alice",
    });
    expect(member?.etag).not.toBe("");
    await failure(
      h.as.owner.addMember({ projectId: p.id, member: { principalId: "bob", principalType: 1, role: 3 } }),
      Code.ALREADY_EXISTS,
    );
    await failure(
      h.as.maintainer.addMember({
        projectId: p.id,
        member: { principalId: "zed", principalType: 1, role: 3 },
      }),
      Code.PERMISSION_DENIED,
    );
    await failure(
      h.as.outsider.addMember({ projectId: p.id, member: { principalId: "zed", principalType: 1, role: 3 } }),
      Code.NOT_FOUND,
    );
  });

  it("names each bad field, including roles that do not fit the principal type", async () => {
    const p = await projectWithTeam(h, "strict-team");
    const err = await failure(
      h.as.owner.addMember({
        projectId: p.id,
        member: {
          principalId: "has/slash",
          principalType: PrincipalType.USER,
          role: MemberRole.AGENT,
          projectId: randomUUID(),
        },
      }),
      Code.INVALID_ARGUMENT,
    );
    expect(badFields(err)).toEqual(["member.principal_id", "member.project_id", "member.role"]);
    const agentAsViewer = await failure(
      h.as.owner.addMember({
        projectId: p.id,
        member: { principalId: "a2", principalType: 2, role: MemberRole.VIEWER },
      }),
      Code.INVALID_ARGUMENT,
    );
    expect(badFields(agentAsViewer)).toEqual(["member.role"]);
    const missing = await failure(
      h.as.owner.addMember({ projectId: p.id, member: {} }),
      Code.INVALID_ARGUMENT,
    );
    expect(badFields(missing)).toEqual(["member.principal_id", "member.principal_type", "member.role"]);
  });

  it("replays a request_id without adding twice", async () => {
    const p = await projectWithTeam(h, "replay-team");
    const req = {
      projectId: p.id,
      member: { principalId: "dora", principalType: 1, role: 3 },
      requestId: randomUUID(),
    };
    const a = await h.as.owner.addMember(req);
    const b = await h.as.owner.addMember(req);
    expect(b.member?.etag).toBe(a.member?.etag);
  });
});

describe("UpdateMemberRole and RemoveMember", () => {
  it("changes roles with etags, and never demotes or removes the last OWNER", async () => {
    const p = await projectWithTeam(h, "owners");
    await failure(
      h.as.owner.updateMemberRole({ projectId: p.id, principalId: "alice", role: MemberRole.MAINTAINER }),
      Code.FAILED_PRECONDITION,
    );
    await failure(
      h.as.owner.removeMember({ projectId: p.id, principalId: "alice" }),
      Code.FAILED_PRECONDITION,
    );
    const { member } = await h.as.owner.updateMemberRole({
      projectId: p.id,
      principalId: "bob",
      role: MemberRole.OWNER,
    });
    expect(member?.role).toBe(MemberRole.OWNER);
    await failure(
      h.as.owner.updateMemberRole({ projectId: p.id, principalId: "carol", role: MemberRole.AGENT }),
      Code.INVALID_ARGUMENT,
    );
    // Now there are two owners: alice may step down, with bob's etag check on the way.
    const before = await h.as.service.getMemberRole({ projectId: p.id, principalId: "alice" });
    await failure(
      h.as.owner.removeMember({ projectId: p.id, principalId: "alice", etag: member!.etag }),
      Code.ABORTED,
    );
    await h.as.owner.removeMember({ projectId: p.id, principalId: "alice", etag: before.etag });
    const after = await h.as.service.getMemberRole({ projectId: p.id, principalId: "alice" });
    expect(after).toMatchObject({ role: MemberRole.UNSPECIFIED, etag: "" });
    await failure(h.as.owner.getProject({ projectId: p.id }), Code.NOT_FOUND);
  });

  it("lets any member leave, but only owners remove others", async () => {
    const p = await projectWithTeam(h, "leavers");
    await failure(h.as.viewer.removeMember({ projectId: p.id, principalId: "bob" }), Code.PERMISSION_DENIED);
    await h.as.viewer.removeMember({ projectId: p.id, principalId: "carol" });
    await failure(h.as.viewer.getProject({ projectId: p.id }), Code.NOT_FOUND);
    await failure(h.as.owner.removeMember({ projectId: p.id, principalId: "carol" }), Code.NOT_FOUND);
    await failure(
      h.as.maintainer.updateMemberRole({ projectId: p.id, principalId: "bob", role: MemberRole.OWNER }),
      Code.PERMISSION_DENIED,
    );
    await failure(
      h.as.owner.updateMemberRole({ projectId: p.id, principalId: "nobody", role: MemberRole.VIEWER }),
      Code.NOT_FOUND,
    );
  });
});

describe("ListMembers", () => {
  it("lists a project's members by principal id, across pages, with filters", async () => {
    const p = await projectWithTeam(h, "listed");
    const first = await h.as.viewer.listMembers({ projectId: p.id, pageSize: 2 });
    expect(first.members.map((m) => m.principalId)).toEqual(["alice", "bob"]);
    const rest = await h.as.viewer.listMembers({
      projectId: p.id,
      pageSize: 2,
      pageToken: first.nextPageToken,
    });
    expect(rest.members.map((m) => m.principalId)).toEqual(["carol"]);
    expect(rest.nextPageToken).toBe("");
    const owners = await h.as.viewer.listMembers({ projectId: p.id, role: MemberRole.OWNER });
    expect(owners.members.map((m) => m.principalId)).toEqual(["alice"]);
    await failure(h.as.outsider.listMembers({ projectId: p.id }), Code.NOT_FOUND);
  });

  it('lists one principal\'s memberships with "-", for itself or a platform admin', async () => {
    const p1 = await projectWithTeam(h, "dash-one");
    const p2 = await projectWithTeam(h, "dash-two");
    const mine = await h.as.viewer.listMembers({ projectId: "-", principalId: "carol" });
    const ids = mine.members.map((m) => m.projectId);
    expect(ids).toContain(p1.id);
    expect(ids).toContain(p2.id);
    expect(mine.members.every((m) => m.principalId === "carol")).toBe(true);
    await failure(
      h.as.outsider.listMembers({ projectId: "-", principalId: "carol" }),
      Code.PERMISSION_DENIED,
    );
    expect((await h.as.service.listMembers({ projectId: "-", principalId: "carol" })).members.length).toBe(
      ids.length,
    );
    const err = await failure(h.as.viewer.listMembers({ projectId: "-" }), Code.INVALID_ARGUMENT);
    expect(badFields(err)).toEqual(["principal_id"]);
  });
});

describe("GetMemberRole (internal)", () => {
  it("answers services with role, state, name and etag; refuses everyone else", async () => {
    const p = await projectWithTeam(h, "roles");
    const r = await h.as.service.getMemberRole({ projectId: p.id, principalId: "bob" });
    expect(r).toMatchObject({
      role: MemberRole.MAINTAINER,
      projectState: ProjectState.ACTIVE,
      projectName: "roles",
    });
    expect(r.etag).not.toBe("");
    const none = await h.as.service.getMemberRole({ projectId: p.id, principalId: "stranger" });
    expect(none.role).toBe(MemberRole.UNSPECIFIED);
    await failure(h.as.owner.getMemberRole({ projectId: p.id, principalId: "bob" }), Code.PERMISSION_DENIED);
    await failure(
      h.as.service.getMemberRole({ projectId: randomUUID(), principalId: "bob" }),
      Code.NOT_FOUND,
    );
    await failure(
      h.as.anonymous.getMemberRole({ projectId: p.id, principalId: "bob" }),
      Code.UNAUTHENTICATED,
    );
  });

  it("refuses member changes on an archived project", async () => {
    const p = await projectWithTeam(h, "frozen-team");
    await h.as.owner.archiveProject({ projectId: p.id, etag: p.etag });
    await failure(
      h.as.owner.addMember({ projectId: p.id, member: { principalId: "late", principalType: 1, role: 3 } }),
      Code.FAILED_PRECONDITION,
    );
  });
});
