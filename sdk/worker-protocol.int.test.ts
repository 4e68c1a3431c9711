/**
 * The worker against a scripted manager speaking the Connect protocol over real gRPC: the
 * protocol duties (heartbeats, logs before completion, outcomes, cancellation, info requests,
 * stale leases, reconnect and resume, credential failures). The same behaviours against the
 * real Agent Manager are in agent-manager.int.test.ts.
 */
import { afterEach, describe, expect, it } from "vitest";
import { RunState } from "../gen/codex/agentmanager/v1/run_pb.js";
import { Code } from "../mesh/errors.js";
import { createLogger } from "../mesh/logging.js";
import { FakeAgentManager } from "./testing/fake-agent-manager.js";
import { type AssignmentHandler, RunFailure } from "./types.js";
import { AgentWorker, type AgentWorkerOptions } from "./worker.js";

const logger = createLogger({
  service: "sdk-test",
  level: (process.env.SDK_TEST_LOG as "debug") ?? "silent",
});
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(handler: AssignmentHandler, opts: Partial<AgentWorkerOptions> = {}, heartbeatMs = 50) {
  const fake = await new FakeAgentManager({ heartbeatMs }).start();
  const worker = new AgentWorker({
    connection: { address: fake.address },
    agent: { name: "test-agent", capacity: 2 },
    handler,
    logger,
    reconnect: { maxAttempts: 4, baseMs: 10, capMs: 40 },
    shutdown: { graceMs: 2_000, forceMs: 5_000 },
    logs: { flushMs: 10 },
    ...opts,
  });
  cleanups.push(
    () => fake.stop(),
    () => worker.stop("test over"),
  );
  return { fake, worker };
}

const completion = async (fake: FakeAgentManager, runId: string) =>
  (await fake.waitForKind("complete", runId)).msg.message.value as {
    status: RunState;
    exitCode?: number;
    error: string;
  };

const logText = (fake: FakeAgentManager, runId: string) =>
  fake
    .messages("logs")
    .filter((l) => l.value.runId === runId)
    .flatMap((l) => l.value.chunks.map((c) => Buffer.from(c.data).toString()))
    .join("");

describe("AgentWorker over the Connect protocol", () => {
  it("runs an assignment: RUNNING, step updates, logs sent before the completion", async () => {
    const settled: string[] = [];
    const { fake, worker } = await setup(
      async (run, ctx) => {
        ctx.log("stdout", `building ${run.workItem.title}`);
        ctx.setStep(1);
        ctx.log("stderr", "warning: something");
        return { exitCode: 0 };
      },
      { onRunSettled: (runId, how) => settled.push(`${runId}:${how}`) },
    );
    await worker.start();
    expect(worker.state).toBe("RUNNING");
    fake.assign("r1");
    const c = await completion(fake, "r1");
    expect(c.status).toBe(RunState.SUCCEEDED);
    expect(c.exitCode).toBe(0);
    const statuses = fake.messages("runStatus").map((s) => [s.value.state, s.value.currentStep]);
    expect(statuses).toEqual([
      [RunState.RUNNING, 0],
      [RunState.RUNNING, 1],
    ]);
    expect(logText(fake, "r1")).toBe("building build\nwarning: something\n");
    const lastLog = fake.received.findLastIndex((r) => r.msg.message.case === "logs");
    const done = fake.received.findIndex((r) => r.msg.message.case === "complete");
    expect(lastLog).toBeLessThan(done);
    await expect.poll(() => settled).toEqual(["r1:completed"]);
  });

  it("keeps heartbeating, listing the run, while the handler hogs the event loop in slices", async () => {
    const { fake, worker } = await setup(async () => {
      const until = Date.now() + 1_000;
      while (Date.now() < until) {
        const slice = Date.now() + 30;
        while (Date.now() < slice) {} // busy CPU work, yielding every 30 ms
        await new Promise((r) => setImmediate(r));
      }
    });
    await worker.start();
    fake.assign("busy");
    await completion(fake, "busy");
    const beats = fake.messages("heartbeat").filter((b) => b.value.runs.some((r) => r.runId === "busy"));
    expect(beats.length).toBeGreaterThanOrEqual(10);
    const gaps = beats.slice(1).map((b, i) => b.at - beats[i]!.at);
    expect(Math.max(...gaps)).toBeLessThan(200);
    expect(beats.every((b) => b.value.metrics !== undefined)).toBe(true);
  });

  it("takes the next assignment when its slot is free though the last outcome is not acknowledged yet", async () => {
    const { fake, worker } = await setup(async () => ({ exitCode: 0 }), {
      agent: { name: "one-slot", capacity: 1 },
    });
    await worker.start();
    fake.holdAcks = true;
    fake.assign("first");
    await fake.waitForKind("complete", "first");
    fake.assign("second");
    await fake.waitForKind("complete", "second");
    expect(fake.messages("reject")).toEqual([]);
    fake.releaseAcks();
    await expect.poll(() => worker.activeRuns).toBe(0);
  });

  it("hands back an assignment beyond its capacity", async () => {
    const { fake, worker } = await setup(
      async (_run, ctx) => {
        await new Promise((r) => ctx.signal.addEventListener("abort", r));
      },
      { agent: { name: "one-slot", capacity: 1 } },
    );
    await worker.start();
    fake.assign("busy");
    await fake.waitForKind("runStatus", "busy");
    fake.assign("extra", {}, 3n);
    const back = (await fake.waitForKind("reject", "extra")).msg.message.value as { reason: string };
    expect(back.reason).toBe("agent is at capacity");
    fake.cancel("busy");
  });

  it("fails a run that throws, with the exit code of a RunFailure", async () => {
    const { fake, worker } = await setup(async () => {
      throw new RunFailure("step 0 exited with 2", 2);
    });
    await worker.start();
    fake.assign("r-fail");
    expect(await completion(fake, "r-fail")).toMatchObject({
      status: RunState.FAILED,
      exitCode: 2,
      error: "step 0 exited with 2",
    });
  });

  it("aborts the handler's signal on cancel and completes CANCELLED", async () => {
    let aborted = false;
    const { fake, worker } = await setup(async (_run, ctx) => {
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      aborted = true;
      return { exitCode: 143 };
    });
    await worker.start();
    fake.assign("r-cancel");
    await fake.waitForKind("runStatus", "r-cancel");
    fake.cancel("r-cancel");
    expect(await completion(fake, "r-cancel")).toMatchObject({ status: RunState.CANCELLED, exitCode: 143 });
    expect(aborted).toBe(true);
  });

  it("asks for information and resolves with the answer", async () => {
    const { fake, worker } = await setup(async (_run, ctx) => {
      const v = await ctx.requestInfo([{ name: "TOKEN", secret: true }], { reason: "need a token" });
      return v.TOKEN === "s3cret" ? { exitCode: 0 } : { status: "FAILED" };
    });
    await worker.start();
    fake.assign("r-info");
    const req = (await fake.waitForKind("infoRequest", "r-info")).msg.message.value as {
      requestId: string;
      fields: { name: string; secret: boolean }[];
      reason: string;
    };
    expect(req.fields).toMatchObject([{ name: "TOKEN", secret: true }]);
    expect(req.reason).toBe("need a token");
    fake.answer("r-info", req.requestId, { TOKEN: "s3cret" });
    expect((await completion(fake, "r-info")).status).toBe(RunState.SUCCEEDED);
  });

  it("abandons a run whose lease is stale: signal aborted, no completion sent", async () => {
    let reason: unknown;
    const { fake, worker } = await setup(async (_run, ctx) => {
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      reason = ctx.signal.reason;
    });
    await worker.start();
    fake.assign("r-stale");
    await fake.waitForKind("runStatus", "r-stale");
    fake.markStale("r-stale");
    await expect.poll(() => reason, { timeout: 3_000 }).toMatchObject({ kind: "lease-lost" });
    await expect.poll(() => worker.activeRuns).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.messages("complete")).toHaveLength(0);
    const lastBeat = fake.messages("heartbeat").at(-1);
    expect(lastBeat?.value.runs).toEqual([]);
  });

  it("reconnects after the stream drops, resumes the run and delivers its completion", async () => {
    let release!: () => void;
    const { fake, worker } = await setup(async (_run, ctx) => {
      ctx.log("stdout", "before the drop");
      await new Promise<void>((r) => {
        release = r;
      });
      ctx.log("stdout", "after the drop");
    });
    const states: string[] = [];
    worker.onStateChange((s) => states.push(s));
    await worker.start();
    fake.assign("r-resume");
    await fake.waitFor((r) => r.msg.message.case === "logs");
    fake.dropStream(Code.UNAVAILABLE);
    await expect.poll(() => fake.connections, { timeout: 3_000 }).toBe(2);
    const hellos = fake.messages("hello");
    expect(hellos[1]?.value.resumeRuns.map((r) => r.runId)).toEqual(["r-resume"]);
    await expect.poll(() => worker.state).toBe("RUNNING");
    release();
    expect((await completion(fake, "r-resume")).status).toBe(RunState.SUCCEEDED);
    expect(logText(fake, "r-resume")).toContain("after the drop");
    expect(states).toEqual(["CONNECTING", "RUNNING", "CONNECTING", "RUNNING"]);
  });

  it("treats a silent stream as dead and reconnects", async () => {
    const { fake, worker } = await setup(async () => {}, {
      welcomeTimeoutMs: 300,
      reconnect: { maxAttempts: 50, baseMs: 10, capMs: 40 },
    });
    await worker.start();
    fake.silent = true;
    await expect.poll(() => worker.state, { timeout: 2_000 }).toBe("CONNECTING");
    fake.silent = false;
    await expect.poll(() => worker.state, { timeout: 2_000 }).toBe("RUNNING");
    expect(fake.connections).toBeGreaterThanOrEqual(2);
  });

  it("fails at once, without retrying, when registration is refused", async () => {
    const { fake, worker } = await setup(async () => {});
    fake.registerError = Code.UNAUTHENTICATED;
    await expect(worker.start()).rejects.toThrow(/refused by the fake/);
    expect(worker.state).toBe("FAILED");
    expect(fake.registrations).toBe(1);
  });

  it("registers again when the manager says the session is invalid", async () => {
    const { fake, worker } = await setup(async () => {});
    fake.connectError = { code: Code.UNAUTHENTICATED, reason: "SESSION_INVALID" };
    await worker.start();
    expect(fake.registrations).toBe(2);
    expect(fake.messages("hello").map((h) => h.value.sessionToken)).toEqual(["session-1", "session-2"]);
  });

  it("gives up after the bounded number of reconnect attempts", async () => {
    const { fake, worker } = await setup(async () => {});
    await worker.start();
    await fake.stop();
    expect(await worker.done).toBe("FAILED");
    expect(worker.failure?.message).toMatch(/gave up after 4 attempts/);
  });
});
