/**
 * End to end: every service as its own process, two real codex-agent processes, people calling
 * through the gateway with JWTs. The release scenario (api build → api test, web build → web
 * test, both → integration → deploy staging → approval-gated deploy prod) completes in
 * dependency order; a cancelled task stops its step's processes; an agent killed with SIGKILL
 * mid-run loses the run to the other agent, which finishes it.
 *
 * Agents connect to the agent manager directly with a mesh principal: through the gateway an
 * agent API key arrives as an API_KEY principal, which the agent manager's Connect refuses
 * (see the SDK README); people's calls all go through the gateway.
 */

import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processAlive } from "../../agent/process-group.js";
import { type Run, RunState } from "../../gen/codex/agentmanager/v1/run_pb.js";
import { MemberRole, PrincipalType } from "../../gen/codex/project/v1/member_pb.js";
import { TaskState } from "../../gen/codex/scheduler/v1/task_pb.js";
import { WorkItemKind, WorkItemState } from "../../gen/codex/workitem/v1/work_item_pb.js";
import { AgentProcess } from "./agent-process.js";
import { ProcessStack } from "./process-stack.js";
import { type Person, person, until, userToken } from "./public-api.js";

let stack: ProcessStack;
let agents: AgentProcess[] = [];
let alice: Person;
let bob: Person;
let projectId = "";
let dir = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "codex-e2e-"));
  stack = await new ProcessStack({
    env: {
      "agent-manager": {
        AGENT_MANAGER_HEARTBEAT_INTERVAL: "250ms",
        AGENT_MANAGER_LEASE_TTL: "2s",
        AGENT_MANAGER_SWEEP_INTERVAL: "100ms",
      },
    },
  }).start();
  const titleSteps = JSON.stringify({ test: ["echo inferred: running the web tests", "sleep 0.2"] });
  // Agents connect through the gateway with agent JWTs, as in production.
  agents = await Promise.all(
    ["e2e-agent-a", "e2e-agent-b"].map(async (name) =>
      new AgentProcess(
        stack,
        name,
        join(dir, name),
        ["--title-steps", titleSteps],
        await userToken(stack, name, { codex_principal_type: "agent" }),
      ).ready(),
    ),
  );
  alice = await person(stack, "alice");
  bob = await person(stack, "bob");
  const created = await alice.projects.createProject({
    project: { name: stack.prefix.replaceAll("_", "-") },
  });
  projectId = created.project?.id ?? "";
  await alice.projects.addMember({
    projectId,
    member: { principalId: "bob", principalType: PrincipalType.USER, role: MemberRole.MAINTAINER },
  });
}, 240_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  alice?.close();
  bob?.close();
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

async function workItem(
  title: string,
  recipe?: string,
  opts: { kind?: WorkItemKind; environment?: string } = {},
) {
  const { workItem: item } = await alice.items.createWorkItem({
    projectId,
    workItem: { title, kind: opts.kind ?? WorkItemKind.BUILD, environment: opts.environment ?? "" },
  });
  const id = item?.id ?? "";
  if (recipe) await alice.items.setToolRecipe({ workItemId: id, recipeYaml: recipe });
  return id;
}

const steps = (...cmds: string[]) => `steps:\n${cmds.map((c) => `  - ${JSON.stringify(c)}`).join("\n")}\n`;

async function schedule(workItemId: string, dependsOn: string[] = []): Promise<string> {
  const { task } = await alice.scheduler.scheduleWorkItem({ workItemId, options: { dependsOn } });
  return task?.id ?? "";
}

const runsOf = async (workItemId: string): Promise<Run[]> => (await alice.runs.listRuns({ workItemId })).runs;
const itemState = async (id: string) => (await alice.items.getWorkItem({ workItemId: id })).workItem?.state;
const ms = (t: { seconds: bigint; nanos: number } | undefined) =>
  t ? Number(t.seconds) * 1000 + t.nanos / 1e6 : Number.NaN;

describe("the orchestrator end to end", () => {
  it("runs the release in dependency order, gating production on an approval", async () => {
    const apiBuild = await workItem("api build", steps("echo compiling api", "sleep 0.3"));
    const apiTest = await workItem("api test", steps("echo testing api >&2", "sleep 0.2"), {
      kind: WorkItemKind.TEST,
    });
    const webBuild = await workItem("web build", steps("echo compiling web", "sleep 0.3"));
    const webTest = await workItem("web test", undefined, { kind: WorkItemKind.TEST });
    const integration = await workItem("integration test", steps("echo integrating"), {
      kind: WorkItemKind.TEST,
    });
    const staging = await workItem("deploy staging", steps("echo deploying to $CODEX_ENVIRONMENT"), {
      kind: WorkItemKind.DEPLOY,
      environment: "staging",
    });
    const prod = await workItem("deploy prod", steps("echo deploying to $CODEX_ENVIRONMENT"), {
      kind: WorkItemKind.DEPLOY,
      environment: "production",
    });
    expect(await itemState(prod)).toBe(WorkItemState.PROPOSED);
    // A risky item gets its approval request on creation.
    const [approvalRequest] = (await alice.items.listApprovalRequests({ workItemId: prod })).approvalRequests;

    const edges: [string, string[]][] = [
      [apiBuild, []],
      [webBuild, []],
      [apiTest, [apiBuild]],
      [webTest, [webBuild]],
      [integration, [apiTest, webTest]],
      [staging, [integration]],
      [prod, [staging]],
    ];
    for (const [id, deps] of [...edges].reverse()) await schedule(id, deps);

    await until(
      "deploy staging DONE",
      () => itemState(staging),
      (s) => s === WorkItemState.DONE,
      90_000,
    );
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await runsOf(prod)).toEqual([]); // gated: no run without the approval
    await bob.items.approveRequest({ approvalRequestId: approvalRequest?.id ?? "", reason: "looks good" });
    await until(
      "deploy prod DONE",
      () => itemState(prod),
      (s) => s === WorkItemState.DONE,
      60_000,
    );

    const run: Record<string, Run> = {};
    for (const [id] of edges) {
      const runs = await runsOf(id);
      expect(runs.map((r) => r.state)).toEqual([RunState.SUCCEEDED]);
      run[id] = runs[0]!;
    }
    for (const [id, deps] of edges) {
      for (const dep of deps) {
        expect(ms(run[id]?.createTime)).toBeGreaterThanOrEqual(ms(run[dep]?.finishTime));
        expect(ms(run[id]?.startTime)).toBeGreaterThanOrEqual(ms(run[dep]?.finishTime));
      }
    }
    const agentIds = new Set(Object.values(run).map((r) => r.agentId));
    expect([...agentIds].every((a) => agents.some((p) => p.agentId === a))).toBe(true);
    const text = async (id: string) =>
      (await alice.runs.listRunLogs({ runId: run[id]?.id ?? "" })).entries.map((e) => e.text);
    expect(await text(apiBuild)).toContain("compiling api");
    expect(await text(apiTest)).toContain("testing api");
    expect(await text(webTest)).toContain("inferred: running the web tests");
    expect(await text(prod)).toContain("deploying to production");
  }, 180_000);

  it("cancelling a task stops the process of its running step", async () => {
    const pidFile = join(dir, "cancelled.pid");
    const id = await workItem("cancel me build", steps(`echo $$ > ${pidFile}; exec sleep 600`));
    const taskId = await schedule(id);
    const pidText = await until(
      "the step's pid",
      () => readFile(pidFile, "utf8").catch(() => ""),
      (t) => t.trim() !== "",
    );
    const pid = Number(pidText.trim());
    expect(processAlive(pid)).toBe(true);
    await alice.scheduler.cancelTask({ taskId, reason: "not needed any more" });
    const [run] = await until(
      "run CANCELLED",
      () => runsOf(id),
      (r) => r[0]?.state === RunState.CANCELLED,
    );
    expect(run?.error).not.toBe("");
    await until(
      "step process gone",
      async () => processAlive(pid),
      (alive) => !alive,
      10_000,
    );
    const task = (await alice.scheduler.getTask({ taskId })).task;
    expect(task?.state).toBe(TaskState.CANCELLED);
  }, 60_000);

  it("reclaims the run of an agent killed mid-run and lets the other agent finish it", async () => {
    const id = await workItem("long build", steps("echo started", "sleep 3", "echo finished"));
    await schedule(id);
    const [first] = await until(
      "run RUNNING",
      () => runsOf(id),
      (r) => r[0]?.state === RunState.RUNNING,
    );
    const victim = agents.find((a) => a.agentId === first?.agentId);
    const survivor = agents.find((a) => a !== victim);
    expect(victim).toBeDefined();
    victim?.child.kill("SIGKILL");
    await until(
      "long build DONE",
      () => itemState(id),
      (s) => s === WorkItemState.DONE,
      60_000,
    );
    const runs = await runsOf(id);
    expect(runs).toHaveLength(1);
    expect(runs[0]?.id).toBe(first?.id);
    expect(runs[0]?.state).toBe(RunState.SUCCEEDED);
    expect(runs[0]?.agentId).toBe(survivor?.agentId);
    expect(runs[0]?.leaseExpiries).toBeGreaterThanOrEqual(1);
    expect(runs[0]?.fencingToken).toBeGreaterThan(first?.fencingToken ?? 0n);
  }, 90_000);
});
