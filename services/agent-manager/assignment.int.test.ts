import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentState } from "../../gen/codex/agentmanager/v1/agent_pb.js";
import { RunState } from "../../gen/codex/agentmanager/v1/run_pb.js";
import { type AmHarness, SERVICE, snapshot, startAgentManager } from "./testing/harness.js";
import { TestAgent } from "./testing/test-agent.js";

let h: AmHarness;
let attempt = 0;

beforeAll(async () => {
  h = await startAgentManager();
});
afterAll(async () => h?.stop());

async function enqueue(
  projectId: string,
  opts: { selector?: Record<string, string>; tools?: { name: string; version?: string }[] } = {},
) {
  attempt += 1;
  const { run } = await h.client(SERVICE).enqueueRun({
    taskId: `task-${attempt}`,
    attempt: 1,
    workItemId: `wi-${attempt}`,
    projectId,
    agentSelector: opts.selector ?? {},
    workItem: snapshot(projectId, opts.tools),
  });
  return run!;
}

describe("registration and assignment", () => {
  it("registers an agent OFFLINE, connects it ONLINE and pushes a matching run on its stream", async () => {
    const a = await TestAgent.register(h, { labels: { pool: "solo" }, capacity: 2, version: "1.2.3" });
    const before = await h.client(SERVICE).getAgent({ agentId: a.id });
    expect(before.agent?.state).toBe(AgentState.OFFLINE);
    const welcome = await a.connect();
    expect(welcome.message.case).toBe("welcome");
    const run = await enqueue("p-solo", { selector: { pool: "solo" } });
    expect(run.state).toBe(RunState.PENDING);
    const msg = await a.waitFor((m) => m.message.case === "assignment");
    const assignment = msg.message.case === "assignment" ? msg.message.value : undefined;
    expect(assignment?.run?.id).toBe(run.id);
    expect(assignment?.fencingToken).toBe(1n);
    expect(assignment?.run?.state).toBe(RunState.ASSIGNED);
    const after = await h.client(SERVICE).getAgent({ agentId: a.id });
    expect(after.agent).toMatchObject({
      state: AgentState.ONLINE,
      runningRuns: 1,
      runningRunIds: [run.id],
      version: "1.2.3",
    });
    await a.close();
  });
});
