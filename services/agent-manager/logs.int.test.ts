import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LogEntry } from "../../gen/codex/agentmanager/v1/logs_pb.js";
import { LogStream } from "../../gen/codex/agentmanager/v1/logs_pb.js";
import { RunState } from "../../gen/codex/agentmanager/v1/run_pb.js";
import { RunCancelRequestedSchema, RunCompletedSchema } from "../../gen/codex/events/v1/agent_events_pb.js";
import { eventually } from "../../mesh/nats/testing.js";
import {
  type AmHarness,
  Code,
  failure,
  people,
  SERVICE,
  snapshot,
  startAgentManager,
} from "./testing/harness.js";
import { TestAgent } from "./testing/test-agent.js";

let h: AmHarness;
let seq = 0;
const PROJECT = "p-logs";
const who = people(PROJECT);

beforeAll(async () => {
  h = await startAgentManager();
});
afterAll(async () => h?.stop());

async function leasedRun() {
  const p = `pool-${randomBytes(3).toString("hex")}`;
  const a = await TestAgent.register(h, { labels: { pool: p } });
  await a.connect();
  seq += 1;
  const { run } = await h.client(SERVICE).enqueueRun({
    taskId: `log-task-${seq}`,
    attempt: 1,
    workItemId: `wi-${seq}`,
    projectId: PROJECT,
    agentSelector: { pool: p },
    workItem: snapshot(PROJECT),
  });
  await eventually("assigned", () => a.assignments().length === 1);
  return { a, runId: run?.id ?? "" };
}

describe("logs", () => {
  it("stores chunks as lines with dense offsets, ignores resent chunks, and lists them with filters", async () => {
    const { a, runId } = await leasedRun();
    a.log(runId, 1, "compiling\nlinking ", LogStream.STDOUT, 0);
    a.log(runId, 2, "done\n", LogStream.STDOUT, 0);
    a.log(runId, 3, "warning: deprecated\n", LogStream.STDERR, 0);
    a.log(runId, 2, "done\n", LogStream.STDOUT, 0); // resent after a reconnect: ignored
    a.log(runId, 4, "test 1 ok\ntest 2 ok\ntest 3 FAILED\n", LogStream.STDOUT, 1);
    await a.acked(a.log(runId, 5, "tail without newline", LogStream.STDOUT, 1));
    const viewer = h.client(who.viewer);
    const all = await viewer.listRunLogs({ runId });
    expect(all.entries.map((e) => [e.offset, e.text])).toEqual([
      [0n, "compiling"],
      [1n, "linking done"],
      [2n, "warning: deprecated"],
      [3n, "test 1 ok"],
      [4n, "test 2 ok"],
      [5n, "test 3 FAILED"],
    ]);
    expect(all).toMatchObject({ nextOffset: 6n, endOfLogs: true });
    expect((await h.client(SERVICE).getRun({ runId })).run?.state).toBe(RunState.RUNNING);

    const stderr = await viewer.listRunLogs({ runId, filter: { streams: [LogStream.STDERR] } });
    expect(stderr.entries.map((e) => e.text)).toEqual(["warning: deprecated"]);
    const step1 = await viewer.listRunLogs({ runId, filter: { stepIndex: 1, contains: "ok" } });
    expect(step1.entries.map((e) => e.offset)).toEqual([3n, 4n]);
    const page = await viewer.listRunLogs({ runId, offset: 1n, limit: 2 });
    expect(page.entries.map((e) => e.offset)).toEqual([1n, 2n]);
    expect(page).toMatchObject({ nextOffset: 3n, endOfLogs: false });
    const rest = await viewer.listRunLogs({ runId, offset: page.nextOffset, limit: 10 });
    expect(rest.entries.map((e) => e.offset)).toEqual([3n, 4n, 5n]);
    expect(rest.endOfLogs).toBe(true);

    // The unfinished last line is stored when the run ends.
    await a.acked(a.complete(runId));
    const final = await viewer.listRunLogs({ runId, offset: 6n });
    expect(final.entries.map((e) => e.text)).toEqual(["tail without newline"]);
    await failure(h.client(who.outsider).listRunLogs({ runId }), Code.NOT_FOUND);
    await a.close();
  });

  it("WatchRunLogs follows new lines live and ends with end_of_logs when the run ends", async () => {
    const { a, runId } = await leasedRun();
    await a.acked(a.log(runId, 1, "before watch\n"));
    const abort = new AbortController();
    const seen: LogEntry[] = [];
    let ended = false;
    const watching = (async () => {
      for await (const msg of h
        .client(who.viewer)
        .watchRunLogs({ runId, follow: true }, { signal: abort.signal })) {
        seen.push(...msg.entries);
        if (msg.endOfLogs) ended = true;
      }
    })();
    await eventually("backlog", () => seen.length === 1);
    const t0 = Date.now();
    a.log(runId, 2, "live 1\n");
    await eventually("live line", () => seen.length === 2);
    expect(Date.now() - t0).toBeLessThan(500);
    a.log(runId, 3, "live 2\nlive 3\n");
    await eventually("two more", () => seen.length === 4);
    a.complete(runId);
    await watching;
    expect(ended).toBe(true);
    expect(seen.map((e) => e.text)).toEqual(["before watch", "live 1", "live 2", "live 3"]);
    expect(seen.map((e) => e.offset)).toEqual([0n, 1n, 2n, 3n]);
    // Resuming after offset 1 without follow returns the rest and ends.
    const again: LogEntry[] = [];
    for await (const msg of h.client(who.viewer).watchRunLogs({ runId, startOffset: 2n }))
      again.push(...msg.entries);
    expect(again.map((e) => e.text)).toEqual(["live 2", "live 3"]);
    await a.close();
  });
});

describe("cancellation", () => {
  it("a maintainer's cancel reaches the agent, which completes the run CANCELLED", async () => {
    const { a, runId } = await leasedRun();
    await a.acked(a.start(runId));
    await failure(h.client(who.viewer).cancelRun({ runId, reason: "no" }), Code.PERMISSION_DENIED);
    await failure(h.client(who.outsider).cancelRun({ runId }), Code.NOT_FOUND);
    const { run } = await h.client(who.maintainer).cancelRun({ runId, reason: "wrong branch" });
    expect(run).toMatchObject({
      state: RunState.RUNNING,
      cancelRequested: true,
      cancelReason: "wrong branch",
    });
    const msg = await a.waitFor((m) => m.message.case === "cancel");
    expect(msg.message.case === "cancel" && msg.message.value).toMatchObject({
      runId,
      fencingToken: 1n,
      reason: "wrong branch",
    });
    // The next heartbeat ack says so too.
    const hb = a.heartbeat();
    const ack = await a.waitFor(
      (m) => m.message.case === "ack" && m.message.value.ackedSeq >= hb && m.message.value.leases.length > 0,
    );
    expect(ack.message.case === "ack" && ack.message.value.leases[0]?.cancelRequested).toBe(true);
    await a.acked(a.complete(runId, RunState.CANCELLED));
    const final = (await h.client(who.viewer).getRun({ runId })).run;
    expect(final?.state).toBe(RunState.CANCELLED);
    // Cancelling a terminal run succeeds without change.
    const again = await h.client(who.maintainer).cancelRun({ runId });
    expect(again.run?.etag).toBe(final?.etag);
    await eventually("events", async () =>
      (await h.payloads(RunCompletedSchema)).some((e) => e.runId === runId),
    );
    expect((await h.payloads(RunCancelRequestedSchema)).filter((e) => e.runId === runId)).toHaveLength(1);
    expect(
      (await h.payloads(RunCompletedSchema)).filter((e) => e.runId === runId).map((e) => e.status),
    ).toEqual([RunState.CANCELLED]);
    await a.close();
  });

  it("a PENDING run is cancelled at once", async () => {
    seq += 1;
    const { run } = await h.client(SERVICE).enqueueRun({
      taskId: `log-task-${seq}`,
      attempt: 1,
      workItemId: "wi-x",
      projectId: PROJECT,
      agentSelector: { pool: "nobody-has-this" },
      workItem: snapshot(PROJECT),
    });
    const out = await h.client(who.maintainer).cancelRun({ runId: run?.id ?? "", reason: "not needed" });
    expect(out.run?.state).toBe(RunState.CANCELLED);
    await eventually("RunCompleted", async () =>
      (await h.payloads(RunCompletedSchema)).some((e) => e.runId === run?.id),
    );
  });
});
