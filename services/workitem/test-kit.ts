import { randomUUID } from "node:crypto";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { EventEnvelope } from "../../gen/codex/events/v1/envelope_pb.js";
import { WorkItemService } from "../../gen/codex/workitem/v1/workitem_service_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { Principal } from "../../mesh/context.js";
import { ServiceError } from "../../mesh/errors.js";
import { decodeEnvelope, unpackPayload } from "../../mesh/events/envelope.js";
import type { ServiceClient } from "../../mesh/grpc/types.js";
import { eventually, readStream } from "../../mesh/nats/testing.js";
import { startTestService, TEST_MESH_SECRET, type TestService } from "../../test/support/harness.js";
import type { WorkitemConfigSpec } from "./config.js";
import { RunsStandIn } from "./runs-stand-in.js";
import { artifactBucket, workitemService } from "./service.js";

/**
 * Integration-test kit for the workitem service: one service per test file (own schema,
 * subject prefix and Object Store bucket), principals of every kind for one project, and a
 * reader of the events actually stored in JetStream.
 */
export interface Kit {
  svc: TestService<WorkitemConfigSpec>;
  /** The agent manager as the service sees it: declare runs (and their leases) here. */
  runs: RunsStandIn;
  project: string;
  as(who: keyof ReturnType<typeof principalsFor>): ServiceClient<typeof WorkItemService>;
  /** Every envelope stored on `<prefix>.events.>` so far, decoded. */
  events(): Promise<{ subject: string; envelope: EventEnvelope }[]>;
  /** Every envelope stored on `<prefix>.commands.>` so far, decoded. */
  commands(): Promise<{ subject: string; envelope: EventEnvelope }[]>;
  /** Waits until the outbox has relayed everything committed so far. */
  settled(): Promise<void>;
  /** Waits until `count` events match, then returns them. */
  eventsOf<D extends DescMessage>(
    schema: D,
    count: number,
    match?: (p: MessageShape<D>) => boolean,
  ): Promise<MessageShape<D>[]>;
  cleanup(): Promise<void>;
}

export function principalsFor(project: string) {
  const member = (id: string, role: string): Principal => ({
    type: "user",
    id,
    projectRoles: { [project]: role },
  });
  return {
    owner: member("olivia", "owner"),
    alice: member("alice", "maintainer"),
    bob: member("bob", "maintainer"),
    carol: member("carol", "maintainer"),
    viewer: member("victor", "viewer"),
    agent: { type: "agent", id: "agent-1", projectRoles: { [project]: "agent" } } as Principal,
    outsider: { type: "user", id: "mallory", projectRoles: { "other-project": "owner" } } as Principal,
    scheduler: { type: "service", id: "scheduler" } as Principal,
  };
}

export async function startKit(env: Record<string, string> = {}): Promise<Kit> {
  const runs = new RunsStandIn(TEST_MESH_SECRET);
  await runs.start();
  const svc = await startTestService(workitemService, {
    env: { SWEEP_INTERVAL: "100ms", AGENT_MANAGER_ADDR: runs.address, ...env },
  });
  const project = randomUUID();
  const who = principalsFor(project);
  const clients = new Map<string, ServiceClient<typeof WorkItemService>>();
  const { jsm, subjects } = svc.running.host.nats;
  const read = async (stream: string) =>
    (await readStream(jsm, stream)).map((m) => ({ subject: m.subject, envelope: decodeEnvelope(m.data) }));
  const events = () => read(subjects.streams.events);
  return {
    svc,
    runs,
    project,
    as(name) {
      let c = clients.get(name);
      if (!c) {
        c = svc.client(WorkItemService, who[name]);
        clients.set(name, c);
      }
      return c;
    },
    events,
    commands: () => read(subjects.streams.commands),
    async settled() {
      await eventually("outbox relayed", async () => {
        const { rows } = await svc.running.host.pool.query(
          "SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL",
        );
        return rows[0]?.n === 0;
      });
    },
    async eventsOf(schema, count, match = () => true) {
      let found: MessageShape<typeof schema>[] = [];
      await eventually(`${count} ${schema.typeName} events`, async () => {
        found = (await events())
          .map((e) => unpackPayload(e.envelope, schema))
          .filter((p): p is MessageShape<typeof schema> => p !== undefined && match(p));
        return found.length >= count;
      });
      return found;
    },
    async cleanup() {
      await jsm.streams.delete(`OBJ_${artifactBucket(svc.running.host.config)}`).catch(() => false);
      await svc.cleanup();
      await runs.stop();
    },
  };
}

/** The gRPC status code and ErrorInfo reason of a failed call. */
export async function failure(
  call: Promise<unknown>,
): Promise<{ code: number; reason: string; err: ServiceError }> {
  try {
    await call;
  } catch (e) {
    const err = ServiceError.from(e);
    return { code: err.code, reason: err.findDetail(ErrorInfoSchema)?.reason ?? "", err };
  }
  throw new Error("expected the call to fail, but it succeeded");
}
