/**
 * Membership changes reach the gateway's caches through the project service's events, long
 * before the (deliberately long, 30 s) cache TTL of this test would let them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemberRole, PrincipalType } from "../../../gen/codex/project/v1/member_pb.js";
import { ProjectService } from "../../../gen/codex/project/v1/project_service_pb.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import type { ServiceClient } from "../../../mesh/grpc/types.js";
import { type AuthStack, startAuthStack } from "./test-stack.js";

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const outcome = (p: Promise<unknown>) =>
  p.then(
    () => "OK",
    (e: unknown) => (e instanceof ServiceError ? Code[e.code] : String(e)),
  );

describe("auth caches follow membership events", () => {
  let s: AuthStack;
  let projects: ServiceClient<typeof ProjectService>;
  let projectId: string;

  beforeAll(async () => {
    s = await startAuthStack({ AUTH_MEMBERSHIP_CACHE_TTL: "30s" });
    projects = s.client(ProjectService);
    const owner = s.project.client(ProjectService, { type: "user", id: "owen" });
    projectId = (await owner.createProject({ project: { name: "cache-events" } })).project?.id ?? "";
    for (const [principalId, role] of [
      ["vera", MemberRole.VIEWER],
      ["pat", MemberRole.VIEWER],
    ] as const) {
      await owner.addMember({ projectId, member: { principalId, principalType: PrincipalType.USER, role } });
    }
  });
  afterAll(async () => {
    await s?.cleanup();
  });

  it("refuses a removed member within moments, not after the TTL", async () => {
    const vera = await s.asUser("vera");
    expect(await outcome(projects.getProject({ projectId }, vera))).toBe("OK");
    const started = Date.now();
    await projects.removeMember({ projectId, principalId: "vera" }, await s.asUser("owen"));
    const after = await eventually(
      () => outcome(projects.getProject({ projectId }, vera)),
      (o) => o === "PERMISSION_DENIED",
    );
    expect(after).toBe("PERMISSION_DENIED");
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("grants a promotion within moments", async () => {
    const pat = await s.asUser("pat");
    const update = () =>
      outcome(
        projects.updateProject(
          { project: { id: projectId, description: "pat was here" }, updateMask: { paths: ["description"] } },
          pat,
        ),
      );
    expect(await update()).toBe("PERMISSION_DENIED");
    await projects.updateMemberRole(
      { projectId, principalId: "pat", role: MemberRole.MAINTAINER },
      await s.asUser("owen"),
    );
    expect(await eventually(update, (o) => o === "OK")).toBe("OK");
  });
});
