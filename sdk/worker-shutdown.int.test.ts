/**
 * Graceful shutdown order against a scripted manager: stop taking work → finish in-flight runs
 * within the grace time or hand them back → deliver outcomes → close the stream → STOPPED.
 */
import { afterEach, describe, expect, it } from "vitest";
import { RunState } from "../gen/codex/agentmanager/v1/run_pb.js";
import { createLogger } from "../mesh/logging.js";
import { FakeAgentManager } from "./testing/fake-agent-manager.js";
import type { AssignmentHandler } from "./types.js";
import { AgentWorker } from "./worker.js";

const logger = createLogger({ service: "sdk-test", level: "silent" });
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(handler: AssignmentHandler, graceMs: number) {
  const fake = await new FakeAgentManager({ heartbeatMs: 50 }).start();
  const worker = new AgentWorker({
    connection: { address: fake.address },
    agent: { name: "test-agent", capacity: 4 },
    handler,
    logger,
    shutdown: { graceMs, forceMs: 10_000 },
    logs: { flushMs: 10 },
  });
  cleanups.push(
    () => fake.stop(),
    () => worker.stop("test over"),
  );
  await worker.start();
  return { fake, worker };
}

const order = (fake: FakeAgentManager) =>
  fake.received.map(
    (r) => `${r.msg.message.case}:${(r.msg.message.value as { runId?: string }).runId ?? ""}`,
  );

describe("AgentWorker.stop", () => {
  it("finishes in-flight work within the grace time, refuses new work, then closes the stream", async () => {
    const { fake, worker } = await setup(async (_run, ctx) => {
      await new Promise((r) => setTimeout(r, 300));
      ctx.log("stdout", "finished despite the stop");
    }, 5_000);
    fake.assign("in-flight");
    await fake.waitForKind("runStatus", "in-flight");
    const stopped = worker.stop("SIGTERM");
    expect(worker.state).toBe("DRAINING");
    fake.assign("too-late", {}, 7n);
    const rejected = (await fake.waitForKind("reject", "too-late")).msg.message.value as {
      fencingToken: bigint;
      reason: string;
    };
    expect(rejected).toMatchObject({ fencingToken: 7n, reason: "agent is shutting down" });
    await stopped;
    expect(worker.state).toBe("STOPPED");
    const done = fake.messages("complete").find((c) => c.value.runId === "in-flight");
    expect(done?.value.status).toBe(RunState.SUCCEEDED);
    const seq = order(fake);
    expect(seq.lastIndexOf("logs:in-flight")).toBeLessThan(seq.indexOf("complete:in-flight"));
    expect(
      fake.received.some(
        (r) => r.msg.message.case === "runStatus" && r.msg.message.value.runId === "too-late",
      ),
    ).toBe(false);
    await expect.poll(() => fake.connected).toBe(false);
  });

  it("hands runs still going at the end of the grace time back, after their handlers stopped", async () => {
    let abortedWith: unknown;
    const { fake, worker } = await setup(async (_run, ctx) => {
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      abortedWith = ctx.signal.reason;
      ctx.log("system", "cleaning up");
    }, 200);
    fake.assign("long");
    await fake.waitForKind("runStatus", "long");
    const started = Date.now();
    await worker.stop("SIGTERM");
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(abortedWith).toMatchObject({ kind: "hand-back" });
    const back = fake.messages("reject").find((r) => r.value.runId === "long");
    expect(back?.value.reason).toBe("agent shutting down");
    expect(fake.messages("complete")).toHaveLength(0);
    expect(worker.state).toBe("STOPPED");
  });

  it("stops at once when nothing runs", async () => {
    const { fake, worker } = await setup(async () => {}, 5_000);
    const started = Date.now();
    await worker.stop();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(worker.state).toBe("STOPPED");
    await expect.poll(() => fake.connected).toBe(false);
  });
});
