/**
 * Test support for the project service's integration tests: starts the real service
 * in-process on a unique schema and subject prefix, hands out one client per principal,
 * and cleans everything up.
 */
import { randomBytes } from "node:crypto";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { ProjectService } from "../../gen/codex/project/v1/project_service_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { Principal } from "../../mesh/context.js";
import { Code, ServiceError } from "../../mesh/errors.js";
import { createClient } from "../../mesh/grpc/client.js";
import type { ServiceClient } from "../../mesh/grpc/types.js";
import { connectNats } from "../../mesh/nats/connection.js";
import { deleteStreams } from "../../mesh/nats/streams.js";
import { type Subjects, subjectsFor } from "../../mesh/nats/subjects.js";
import { dropSchema } from "../../mesh/postgres/migrations.js";
import { createPool } from "../../mesh/postgres/pool.js";
import { type RunningService, startService } from "../../mesh/service-host.js";
import { freePort } from "../../test/support/ports.js";
import type { projectConfigSpec } from "./config.js";
import { projectService } from "./service.js";

export const PRINCIPALS = {
  owner: { type: "user", id: "alice" },
  maintainer: { type: "user", id: "bob" },
  viewer: { type: "user", id: "carol" },
  outsider: { type: "user", id: "mallory" },
  agent: { type: "agent", id: "agent-7" },
  service: { type: "service", id: "workitem" },
} as const satisfies Record<string, Principal>;

export type Client = ServiceClient<typeof ProjectService>;

export interface Harness {
  readonly running: RunningService<typeof projectConfigSpec>;
  readonly secret: string;
  readonly schema: string;
  readonly prefix: string;
  readonly subjects: Subjects;
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  /** One client per named principal, plus `anonymous` sending none. */
  readonly as: Record<keyof typeof PRINCIPALS | "anonymous", Client>;
  /** A client for any other principal (closed by stop()). */
  clientFor(principal: Principal | undefined): Client;
  stop(): Promise<void>;
}

export async function startHarness(env: Record<string, string> = {}): Promise<Harness> {
  const tag = randomBytes(5).toString("hex");
  const schema = `t_project_${tag}`;
  const prefix = `tproject${tag}`;
  const secret = `secret-${tag}`;
  const running = await startService(projectService, {
    MESH_SECRET: secret,
    // mesh/config.ts refuses PORT=0 (port() without allowZero), so ask the OS for a free one.
    PORT: String(await freePort()),
    METRICS_PORT: "0",
    DB_SCHEMA: schema,
    NATS_SUBJECT_PREFIX: prefix,
    LOG_LEVEL: "warn",
    ...env,
  });
  const nc = await connectNats({ servers: "nats://127.0.0.1:4222", name: `project-test-${tag}` });
  const jsm = await jetstreamManager(nc);
  const clients: Client[] = [];
  const clientFor = (principal: Principal | undefined): Client => {
    const c = createClient(ProjectService, {
      address: running.address,
      principalSecret: secret,
      ...(principal ? { defaultPrincipal: principal } : {}),
      retry: false,
      breaker: false,
    });
    clients.push(c);
    return c;
  };
  const as = {
    owner: clientFor(PRINCIPALS.owner),
    maintainer: clientFor(PRINCIPALS.maintainer),
    viewer: clientFor(PRINCIPALS.viewer),
    outsider: clientFor(PRINCIPALS.outsider),
    agent: clientFor(PRINCIPALS.agent),
    service: clientFor(PRINCIPALS.service),
    anonymous: clientFor(undefined),
  };
  return {
    running,
    secret,
    schema,
    prefix,
    subjects: subjectsFor(prefix),
    nc,
    jsm,
    as,
    clientFor,
    async stop() {
      for (const c of clients) c.close();
      await running.stop("test done");
      await deleteStreams(jsm, prefix);
      await nc.close();
      const pool = createPool({ url: "postgres://root@127.0.0.1:5432/test", schema });
      try {
        await dropSchema(pool, schema);
      } finally {
        await pool.end();
      }
    },
  };
}

/** Awaits a call expected to fail with `code`; returns the error for further checks. */
export async function failure(call: Promise<unknown>, code: Code): Promise<ServiceError> {
  try {
    await call;
  } catch (err) {
    const e = ServiceError.from(err);
    if (e.code !== code) {
      throw new Error(`expected ${Code[code]}, got ${Code[e.code]}: ${e.message}`, { cause: err });
    }
    return e;
  }
  throw new Error(`expected ${Code[code]}, but the call succeeded`);
}

/** The field paths of an INVALID_ARGUMENT's BadRequest detail. */
export function badFields(err: ServiceError): string[] {
  return err.findDetail(BadRequestSchema)?.fieldViolations.map((v) => v.field) ?? [];
}

/** A project with MAINTAINER bob and VIEWER carol besides OWNER alice; returns it. */
export async function projectWithTeam(h: Harness, name: string) {
  const { project } = await h.as.owner.createProject({ project: { name } });
  if (!project) throw new Error("no project returned");
  for (const [who, role] of [
    ["bob", 2],
    ["carol", 3],
  ] as const) {
    await h.as.owner.addMember({
      projectId: project.id,
      member: { principalId: who, principalType: 1, role },
    });
  }
  return project;
}
