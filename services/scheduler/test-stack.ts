/**
 * Integration-test stack for the scheduler: the real Project and WorkItem services, the
 * agent manager stand-in, and one or more scheduler replicas, all in this process, talking
 * over real gRPC and sharing one NATS subject prefix (each service its own schema).
 */
import { randomUUID } from "node:crypto";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { ProjectService } from "../../gen/codex/project/v1/project_service_pb.js";
import { SchedulerService } from "../../gen/codex/scheduler/v1/scheduler_service_pb.js";
import { type ScheduledTask, TaskState } from "../../gen/codex/scheduler/v1/task_pb.js";
import { WorkItemKind } from "../../gen/codex/workitem/v1/work_item_pb.js";
import { WorkItemService } from "../../gen/codex/workitem/v1/workitem_service_pb.js";
import type { Principal } from "../../mesh/context.js";
import { createClient } from "../../mesh/grpc/client.js";
import type { ServiceClient } from "../../mesh/grpc/types.js";
import { connectNats } from "../../mesh/nats/connection.js";
import { type Subjects, subjectsFor } from "../../mesh/nats/subjects.js";
import { eventually } from "../../mesh/nats/testing.js";
import type { ServiceDefinition } from "../../mesh/service-host.js";
import {
  dropTestSchema,
  NATS_URL,
  startTestService,
  TEST_MESH_SECRET,
  type TestService,
  uniqueName,
} from "../../test/support/harness.js";
import { projectService } from "../project/service.js";
import { workitemService } from "../workitem/service.js";
import { AgentManagerStandIn } from "./agent-manager-stand-in.js";
import type { SchedulerConfigSpec } from "./config.js";
import { createSchedulerService, type SchedulerServiceOptions } from "./service.js";

export type SchedulerClient = ServiceClient<typeof SchedulerService>;

export interface Stack {
  prefix: string;
  subjects: Subjects;
  nc: NatsConnection;
  am: AgentManagerStandIn;
  project: TestService<never>;
  workitem: TestService<never>;
  schedulers: TestService<SchedulerConfigSpec>[];
  schedulerSchema: string;
  /** A project created for the test (alice is its owner). */
  projectId: string;
  people: { alice: Principal; bob: Principal; viewer: Principal; outsider: Principal; service: Principal };
  /** Scheduler client of replica `i` calling as `who`. */
  sched(who?: Principal, i?: number): SchedulerClient;
  items(who?: Principal): ServiceClient<typeof WorkItemService>;
  projects(who?: Principal): ServiceClient<typeof ProjectService>;
  /** Starts another scheduler replica on the same schema (e.g. after stopping one). */
  addScheduler(
    opts?: SchedulerServiceOptions,
    env?: Record<string, string>,
  ): Promise<TestService<SchedulerConfigSpec>>;
  /** Creates an APPROVED (not risky) work item, or a risky one (PROPOSED) with `risky`. */
  newItem(
    title: string,
    opts?: { risky?: boolean; reviewRequired?: boolean; projectId?: string },
  ): Promise<string>;
  /** Creates another project (owned by alice) with the given quota. */
  newProject(quota: { maxConcurrentRuns?: number; runsPerDay?: number }): Promise<string>;
  /** The task as replica 0 reports it now. */
  task(id: string): Promise<ScheduledTask>;
  /** Waits until the task is in `state`, and returns it. */
  taskIn(id: string, state: TaskState, ms?: number): Promise<ScheduledTask>;
  cleanup(): Promise<void>;
}

export const FAST_SCHEDULER_ENV: Record<string, string> = {
  IDLE_POLL: "200ms",
  RECONCILE_INTERVAL: "2s",
  SAGA_RECOVERY_INTERVAL: "200ms",
  SAGA_LEASE: "5s",
  SAGA_RETRY_BASE: "50ms",
  SAGA_RETRY_CAP: "200ms",
  DOWNSTREAM_TIMEOUT: "5s",
};

export async function startStack(
  opts: {
    replicas?: number;
    scheduler?: SchedulerServiceOptions;
    schedulerEnv?: Record<string, string>;
    projectEnv?: Record<string, string>;
  } = {},
): Promise<Stack> {
  const prefix = uniqueName("tsch");
  const subjects = subjectsFor(prefix);
  const project = (await startTestService(projectService as ServiceDefinition<never>, {
    prefix,
    env: { QUOTA_CONCURRENCY_RETRY_MS: "200", ...opts.projectEnv },
  })) as TestService<never>;
  const workitem = (await startTestService(workitemService as ServiceDefinition<never>, {
    prefix,
    env: { SWEEP_INTERVAL: "1s" },
  })) as TestService<never>;
  const nc = await connectNats({ servers: NATS_URL, name: `${prefix}-am-stand-in` });
  const am = new AgentManagerStandIn(jetstream(nc), subjects, TEST_MESH_SECRET);
  await am.start();
  const schedulerSchema = uniqueName("scheduler");
  const schedulerEnv = {
    ...FAST_SCHEDULER_ENV,
    PROJECT_ADDR: project.running.address,
    WORKITEM_ADDR: workitem.running.address,
    AGENT_MANAGER_ADDR: am.address,
    ...opts.schedulerEnv,
  };
  const schedulers: TestService<SchedulerConfigSpec>[] = [];
  const addScheduler = async (
    o: SchedulerServiceOptions = opts.scheduler ?? {},
    env: Record<string, string> = {},
  ) => {
    const s = await startTestService(createSchedulerService(o), {
      prefix,
      schema: schedulerSchema,
      env: { ...schedulerEnv, ...env },
    });
    schedulers.push(s);
    return s;
  };
  for (let i = 0; i < (opts.replicas ?? 1); i++) await addScheduler();

  const owner: Principal = { type: "user", id: "alice" };
  const created = await project
    .client(ProjectService, owner)
    .createProject({ project: { name: prefix.replaceAll("_", "-") } });
  const projectId = created.project?.id ?? "";
  const member = (id: string, role: string): Principal => ({
    type: "user",
    id,
    projectRoles: { [projectId]: role },
  });
  const people = {
    alice: member("alice", "owner"),
    bob: member("bob", "maintainer"),
    viewer: member("victor", "viewer"),
    outsider: { type: "user", id: "mallory", projectRoles: { [randomUUID()]: "owner" } } as Principal,
    service: { type: "service", id: "test" } as Principal,
  };
  const clients: { close(): void }[] = [];
  const clientOf = <C extends { close(): void }>(c: C) => {
    clients.push(c);
    return c;
  };
  const stack: Stack = {
    prefix,
    subjects,
    nc,
    am,
    project,
    workitem,
    schedulers,
    schedulerSchema,
    projectId,
    people,
    sched: (who = people.alice, i = 0) => {
      const s = schedulers[i];
      if (!s) throw new Error(`no scheduler replica ${i}`);
      return clientOf(
        createClient(SchedulerService, {
          address: s.running.address,
          principalSecret: TEST_MESH_SECRET,
          defaultPrincipal: who,
          retry: false,
          breaker: false,
        }),
      );
    },
    items: (who = people.alice) => clientOf(workitem.client(WorkItemService, who)),
    projects: (who = people.service) => clientOf(project.client(ProjectService, who)),
    addScheduler,
    async newItem(title, o = {}) {
      const { workItem } = await stack.items(o.projectId ? people.service : people.alice).createWorkItem({
        projectId: o.projectId ?? projectId,
        workItem: {
          title,
          kind: o.risky ? WorkItemKind.DEPLOY : WorkItemKind.BUILD,
          environment: o.risky ? "production" : "",
          reviewRequired: o.reviewRequired ?? false,
        },
      });
      return workItem?.id ?? "";
    },
    async newProject(quota) {
      const { project: p } = await project
        .client(ProjectService, owner)
        .createProject({ project: { name: `${prefix.replaceAll("_", "-")}-${randomUUID().slice(0, 8)}` } });
      const id = p?.id ?? "";
      await stack
        .projects()
        .setQuota({ projectId: id, quota: { runsPerDay: 0, maxConcurrentRuns: 0, ...quota } });
      return id;
    },
    async task(id) {
      return (await stack.sched().getTask({ taskId: id })).task as ScheduledTask;
    },
    taskIn(id, state, ms = 10_000) {
      return until(
        `task ${id} ${TaskState[state]}`,
        () => stack.task(id),
        (t) => t.state === state,
        ms,
      );
    },
    async cleanup() {
      for (const c of clients) c.close();
      for (const s of schedulers) await s.running.stop("test finished").catch(() => {});
      await am.stop();
      await nc.close();
      await workitem.running.host.nats.jsm.streams.delete(`OBJ_${prefix}_artifacts`).catch(() => false);
      await Promise.allSettled([project.cleanup(), workitem.cleanup()]);
      await dropTestSchema(schedulerSchema);
    },
  };
  return stack;
}

/** Polls `read` until `ok` holds for its value, then returns it. */
export async function until<T>(
  what: string,
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  ms = 10_000,
): Promise<T> {
  let last: T | undefined;
  await eventually(
    what,
    async () => {
      last = await read();
      return ok(last);
    },
    ms,
  );
  return last as T;
}
