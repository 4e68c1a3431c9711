import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QuotaWindow, ReservationState } from "../../gen/codex/project/v1/quota_pb.js";
import { QuotaFailureSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Code } from "../../mesh/errors.js";
import { createPool } from "../../mesh/postgres/pool.js";
import { badFields, failure, type Harness, projectWithTeam, startHarness } from "./test-support.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    DEFAULT_RUNS_PER_DAY: "3",
    DEFAULT_MAX_CONCURRENT_RUNS: "2",
    QUOTA_CONCURRENCY_RETRY_MS: "1500",
  });
});
afterAll(async () => h?.stop());

const reserve = (projectId: string, key: string, workItemId = `wi-${key}`) =>
  h.as.service.reserveRunSlot({ projectId, reservationKey: key, workItemId });

describe("quota settings", () => {
  it("starts from the configured defaults and reports usage in the UTC day", async () => {
    const p = await projectWithTeam(h, "defaults");
    const { quota, usage } = await h.as.viewer.getQuota({ projectId: p.id });
    expect(quota).toMatchObject({
      runsPerDay: 3,
      maxConcurrentRuns: 2,
      isDefault: true,
      window: QuotaWindow.DAILY_UTC,
    });
    expect(quota?.updateTime).toBeUndefined();
    expect(usage).toMatchObject({ runsUsedInWindow: 0, runsRemainingInWindow: 3, concurrentInUse: 0 });
    const start = Number(usage!.windowStartTime!.seconds) * 1000;
    expect(start % 86_400_000).toBe(0);
    expect(Number(usage!.windowResetTime!.seconds) * 1000 - start).toBe(86_400_000);
  });

  it("is set by owners and platform admins only, with etags and bounds", async () => {
    const p = await projectWithTeam(h, "limits");
    const q = { runsPerDay: 10, maxConcurrentRuns: 0 };
    await failure(h.as.maintainer.setQuota({ projectId: p.id, quota: q }), Code.PERMISSION_DENIED);
    await failure(h.as.viewer.setQuota({ projectId: p.id, quota: q }), Code.PERMISSION_DENIED);
    await failure(h.as.outsider.setQuota({ projectId: p.id, quota: q }), Code.NOT_FOUND);
    const { quota: before } = await h.as.owner.getQuota({ projectId: p.id });
    const { quota } = await h.as.owner.setQuota({ projectId: p.id, quota: { ...q, etag: before!.etag } });
    expect(quota).toMatchObject({
      runsPerDay: 10,
      maxConcurrentRuns: 0,
      isDefault: false,
      updatedBy: "alice",
    });
    expect(quota?.updateTime).toBeDefined();
    await failure(
      h.as.owner.setQuota({ projectId: p.id, quota: { ...q, etag: before!.etag } }),
      Code.ABORTED,
    );
    const admin = await h.as.service.setQuota({
      projectId: p.id,
      quota: { runsPerDay: 5, maxConcurrentRuns: 1 },
    });
    expect(admin.quota?.updatedBy).toBe("workitem");
    // A human platform admin, as the gateway marks one, needs no membership.
    const root = h.clientFor({ type: "user", id: "root", projectRoles: { "*": "admin" } });
    expect((await root.setQuota({ projectId: p.id, quota: { runsPerDay: 6 } })).quota?.updatedBy).toBe(
      "root",
    );
    const err = await failure(
      h.as.owner.setQuota({
        projectId: p.id,
        quota: { runsPerDay: -1, maxConcurrentRuns: 10_001, window: 7 as QuotaWindow },
      }),
      Code.INVALID_ARGUMENT,
    );
    expect(badFields(err)).toEqual(["quota.runs_per_day", "quota.max_concurrent_runs", "quota.window"]);
  });
});

describe("run slots", () => {
  it("reserves idempotently, refuses beyond concurrency with a short retry, and frees slots on release", async () => {
    const p = await projectWithTeam(h, "slots");
    const r1 = await reserve(p.id, "k1");
    expect(r1.reservation).toMatchObject({
      key: "k1",
      granted: true,
      state: ReservationState.HELD,
      workItemId: "wi-k1",
    });
    expect(r1.usage).toMatchObject({ runsUsedInWindow: 1, concurrentInUse: 1, runsRemainingInWindow: 2 });
    const ttl = Number(r1.reservation!.expireTime!.seconds - r1.reservation!.createTime!.seconds);
    expect(ttl).toBe(6 * 3600);

    const replay = await reserve(p.id, "k1");
    expect(replay.reservation?.createTime).toEqual(r1.reservation?.createTime);
    expect(replay.usage?.runsUsedInWindow).toBe(1);
    const reused = await failure(reserve(p.id, "k1", "another-item"), Code.INVALID_ARGUMENT);
    expect(badFields(reused)).toEqual(["reservation_key"]);

    await reserve(p.id, "k2");
    const full = await failure(reserve(p.id, "k3"), Code.RESOURCE_EXHAUSTED);
    expect(full.findDetail(QuotaFailureSchema)?.violations[0]).toMatchObject({
      subject: `project:${p.id}`,
      description: "max_concurrent_runs",
    });
    expect(full.retryAfterMs).toBe(1500);

    const released = await h.as.service.releaseRunSlot({
      projectId: p.id,
      reservationKey: "k1",
      consumed: true,
    });
    expect(released.reservation).toMatchObject({ state: ReservationState.CONSUMED, granted: false });
    expect(released.reservation?.releaseTime).toBeDefined();
    const again = await h.as.service.releaseRunSlot({
      projectId: p.id,
      reservationKey: "k1",
      consumed: false,
    });
    expect(again.reservation?.state).toBe(ReservationState.CONSUMED);
    const replayReleased = await reserve(p.id, "k1");
    expect(replayReleased.reservation).toMatchObject({ granted: false, state: ReservationState.CONSUMED });

    const r3 = await reserve(p.id, "k3");
    expect(r3.usage).toMatchObject({ runsUsedInWindow: 3, concurrentInUse: 2, runsRemainingInWindow: 0 });
    const refunded = await h.as.service.releaseRunSlot({
      projectId: p.id,
      reservationKey: "k3",
      consumed: false,
    });
    expect(refunded.reservation?.state).toBe(ReservationState.REFUNDED);
    const { usage } = await h.as.viewer.getQuota({ projectId: p.id });
    expect(usage).toMatchObject({ runsUsedInWindow: 2, concurrentInUse: 1 });
  });

  it("refuses beyond runs_per_day until the UTC window resets", async () => {
    const p = await projectWithTeam(h, "daily");
    await h.as.service.setQuota({ projectId: p.id, quota: { runsPerDay: 2, maxConcurrentRuns: 0 } });
    for (const key of ["d1", "d2"]) {
      await reserve(p.id, key);
      await h.as.service.releaseRunSlot({ projectId: p.id, reservationKey: key, consumed: true });
    }
    const err = await failure(reserve(p.id, "d3"), Code.RESOURCE_EXHAUSTED);
    expect(err.findDetail(QuotaFailureSchema)?.violations[0]?.description).toBe("runs_per_day");
    const untilMidnight = 86_400_000 - (Date.now() % 86_400_000);
    expect(Math.abs((err.retryAfterMs ?? 0) - untilMidnight)).toBeLessThan(10_000);
  });

  it("releases expired HELD reservations lazily as EXPIRED", async () => {
    const p = await projectWithTeam(h, "expiring");
    await h.as.service.reserveRunSlot({
      projectId: p.id,
      reservationKey: "e1",
      workItemId: "wi-e1",
      ttl: { seconds: 60n },
    });
    const pool = createPool({ url: "postgres://root@127.0.0.1:5432/test", schema: h.schema });
    try {
      // Nobody waits a minute in a test: move the deadline into the past instead.
      await pool.query("UPDATE reservations SET expire_time = now() - interval '1 second' WHERE key = 'e1'");
    } finally {
      await pool.end();
    }
    expect((await h.as.viewer.getQuota({ projectId: p.id })).usage?.concurrentInUse).toBe(0);
    const r = await h.as.service.releaseRunSlot({ projectId: p.id, reservationKey: "e1", consumed: false });
    expect(r.reservation?.state).toBe(ReservationState.EXPIRED);
    expect((await h.as.viewer.getQuota({ projectId: p.id })).usage?.runsUsedInWindow).toBe(1);
  });

  it("is internal, validated, and closed on archived or unknown projects", async () => {
    const p = await projectWithTeam(h, "slot-guard");
    await failure(
      h.as.owner.reserveRunSlot({ projectId: p.id, reservationKey: "x", workItemId: "w" }),
      Code.PERMISSION_DENIED,
    );
    await failure(
      h.as.owner.releaseRunSlot({ projectId: p.id, reservationKey: "x" }),
      Code.PERMISSION_DENIED,
    );
    const err = await failure(
      h.as.service.reserveRunSlot({
        projectId: p.id,
        reservationKey: "",
        workItemId: "",
        ttl: { seconds: 10n },
      }),
      Code.INVALID_ARGUMENT,
    );
    expect(badFields(err)).toEqual(["reservation_key", "work_item_id", "ttl"]);
    await failure(reserve(randomUUID(), "x"), Code.NOT_FOUND);
    await failure(
      h.as.service.releaseRunSlot({ projectId: p.id, reservationKey: "missing" }),
      Code.NOT_FOUND,
    );
    await reserve(p.id, "held");
    await h.as.owner.archiveProject({
      projectId: p.id,
      etag: (await h.as.owner.getProject({ projectId: p.id })).project!.etag,
    });
    await failure(reserve(p.id, "after-archive"), Code.FAILED_PRECONDITION);
    const freed = await h.as.service.releaseRunSlot({
      projectId: p.id,
      reservationKey: "held",
      consumed: false,
    });
    expect(freed.reservation?.state).toBe(ReservationState.REFUNDED);
  });

  it("serializes concurrent reservations per project", async () => {
    const p = await projectWithTeam(h, "racing");
    const results = await Promise.allSettled(["c1", "c2", "c3", "c4", "c5"].map((k) => reserve(p.id, k)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(2);
    expect((await h.as.viewer.getQuota({ projectId: p.id })).usage?.concurrentInUse).toBe(2);
  });
});
