import { createCipheriv, createHash } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Objm } from "@nats-io/obj";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../../gen/codex/agentmanager/v1/run_pb.js";
import { ArtifactStoredSchema } from "../../gen/codex/events/v1/workitem_events_pb.js";
import type {
  UploadArtifactHeaderSchema,
  UploadArtifactRequestSchema,
} from "../../gen/codex/workitem/v1/artifact_pb.js";
import { WorkItemKind } from "../../gen/codex/workitem/v1/work_item_pb.js";
import { Code } from "../../mesh/errors.js";
import { eventually } from "../../mesh/nats/testing.js";
import type { DeclaredRun } from "./runs-stand-in.js";
import { artifactBucket } from "./service.js";
import { failure, type Kit, startKit } from "./test-kit.js";

const LIMIT = 64 * 1024 * 1024;
let kit: Kit;
let itemId = "";
beforeAll(async () => {
  kit = await startKit({ ARTIFACT_MAX_BYTES: String(LIMIT) });
  const res = await kit
    .as("alice")
    .createWorkItem({ projectId: kit.project, workItem: { title: "a", kind: WorkItemKind.BUILD } });
  itemId = res.workItem?.id ?? "";
});
afterAll(async () => kit?.cleanup());

type Msg = MessageInitShape<typeof UploadArtifactRequestSchema>;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Deterministic pseudo-random content, generated chunk by chunk (never held whole). */
function* content(size: number, chunk: number, seed = 1): Generator<Uint8Array> {
  const cipher = createCipheriv("aes-256-ctr", Buffer.alloc(32, seed), Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(chunk);
  for (let sent = 0; sent < size; sent += chunk)
    yield cipher.update(zeros.subarray(0, Math.min(chunk, size - sent)));
}

function digestOf(size: number, chunk: number, seed = 1): string {
  const h = createHash("sha256");
  for (const c of content(size, chunk, seed)) h.update(c);
  return h.digest("hex");
}

async function* upload(
  header: MessageInitShape<typeof UploadArtifactHeaderSchema>,
  chunks: Iterable<Uint8Array>,
) {
  yield { payload: { case: "header", value: header } } as Msg;
  for (const c of chunks) yield { payload: { case: "chunk", value: c } } as Msg;
}

async function objectNames(): Promise<string[]> {
  const os = await new Objm(kit.svc.running.host.nats.nc).open(artifactBucket(kit.svc.running.host.config));
  return (await os.list()).filter((i) => !i.deleted).map((i) => i.name);
}

async function download(id: string, offset = 0n) {
  const h = createHash("sha256");
  let size = 0;
  let first: unknown;
  for await (const msg of kit.as("viewer").downloadArtifact({ artifactId: id, offset })) {
    first ??= msg.artifact;
    h.update(msg.data);
    size += msg.data.byteLength;
  }
  return { sha256: h.digest("hex"), size, first };
}

describe("artifacts", () => {
  it("stores verified content once per sha256, lists it by item and run, and streams it back", async () => {
    const data = new TextEncoder().encode("hello artifact\n".repeat(1000));
    const header = {
      workItemId: itemId,
      name: "log.txt",
      contentType: "text/plain",
      expectedSha256: sha256(data),
      expectedSize: BigInt(data.length),
    };
    const stored = (
      await kit.as("alice").uploadArtifact(upload(header, [data.subarray(0, 7000), data.subarray(7000)]))
    ).artifact;
    expect(stored).toMatchObject({
      name: "log.txt",
      contentType: "text/plain",
      sizeBytes: BigInt(data.length),
      sha256: sha256(data),
      createdBy: "alice",
    });
    const again = await kit.as("alice").uploadArtifact(upload(header, [data]));
    expect(again.artifact?.id).toBe(stored?.id);
    kit.runs.set("run-1", { workItemId: itemId, agentId: "agent-1", fencingToken: 7n });
    const copy = await kit
      .as("agent")
      .uploadArtifact(upload({ ...header, name: "copy.txt", runId: "run-1", fencingToken: 7n }, [data]));
    expect(copy.artifact?.runId).toBe("run-1");
    expect((await objectNames()).filter((n) => n === `sha256/${sha256(data)}`)).toHaveLength(1);

    const other = await failure(
      kit
        .as("alice")
        .uploadArtifact(
          upload({ ...header, expectedSha256: sha256(new Uint8Array(3)), expectedSize: 3n }, [
            new Uint8Array(3),
          ]),
        ),
    );
    expect(other.code).toBe(Code.ALREADY_EXISTS);

    const byItem = await kit.as("viewer").listArtifacts({ workItemId: itemId });
    expect(byItem.artifacts.map((a) => a.name)).toEqual(["log.txt", "copy.txt"]);
    const byRun = await kit.as("viewer").listArtifacts({ runId: "run-1" });
    expect(byRun.artifacts.map((a) => a.id)).toEqual([copy.artifact?.id]);
    const paged = await kit.as("viewer").listArtifacts({ workItemId: itemId, pageSize: 1 });
    const next = await kit
      .as("viewer")
      .listArtifacts({ workItemId: itemId, pageSize: 1, pageToken: paged.nextPageToken });
    expect([...paged.artifacts, ...next.artifacts].map((a) => a.name)).toEqual(["log.txt", "copy.txt"]);
    expect((await kit.as("outsider").listArtifacts({ runId: "run-1" })).artifacts).toHaveLength(0);
    expect((await failure(kit.as("outsider").getArtifact({ artifactId: stored?.id ?? "" }))).code).toBe(
      Code.NOT_FOUND,
    );

    const back = await download(stored?.id ?? "");
    expect([back.sha256, back.size]).toEqual([sha256(data), data.length]);
    const tail = await download(stored?.id ?? "", 10_000n);
    expect(tail.sha256).toBe(sha256(data.subarray(10_000)));
    expect((await failure(download(stored?.id ?? "", BigInt(data.length + 1)))).code).toBe(Code.OUT_OF_RANGE);
    const events = await kit.eventsOf(ArtifactStoredSchema, 2);
    expect(events.map((e) => e.artifact?.name).sort()).toEqual(["copy.txt", "log.txt"]);
  });

  it("stores nothing when the content does not match its sha256 or size, or breaks the protocol", async () => {
    const data = new Uint8Array(200_000).fill(7);
    const base = {
      workItemId: itemId,
      name: "bad.bin",
      expectedSha256: sha256(data),
      expectedSize: BigInt(data.length),
    };
    const before = await objectNames();
    const tampered = Uint8Array.from(data);
    tampered[123] = 8;
    const checksum = await failure(kit.as("alice").uploadArtifact(upload(base, [tampered])));
    expect([checksum.code, checksum.reason]).toEqual([Code.INVALID_ARGUMENT, "CHECKSUM_MISMATCH"]);
    const short = await failure(kit.as("alice").uploadArtifact(upload(base, [data.subarray(1)])));
    expect(short.reason).toBe("SIZE_MISMATCH");
    const long = await failure(kit.as("alice").uploadArtifact(upload(base, [data, new Uint8Array(1)])));
    expect(long.reason).toBe("SIZE_MISMATCH");
    const tooLarge = await failure(
      kit.as("alice").uploadArtifact(upload({ ...base, expectedSize: BigInt(LIMIT + 1) }, [])),
    );
    expect(tooLarge.reason).toBe("ARTIFACT_TOO_LARGE");
    const noHeader = await failure(
      kit.as("alice").uploadArtifact(
        (async function* () {
          yield { payload: { case: "chunk", value: data } } as Msg;
        })(),
      ),
    );
    expect(noHeader.code).toBe(Code.INVALID_ARGUMENT);
    const viewer = await failure(kit.as("viewer").uploadArtifact(upload(base, [data])));
    expect(viewer.code).toBe(Code.PERMISSION_DENIED);
    expect(
      (await kit.as("viewer").listArtifacts({ workItemId: itemId })).artifacts.map((a) => a.name),
    ).not.toContain("bad.bin");
    await eventually("temporary objects purged", async () => (await objectNames()).length === before.length);
  });

  it("leaves nothing half-visible when the client goes away mid-upload", async () => {
    const size = 8 * 1024 * 1024;
    const before = await objectNames();
    const stream = `OBJ_${artifactBucket(kit.svc.running.host.config)}`;
    const bytesBefore = (await kit.svc.running.host.nats.jsm.streams.info(stream)).state.bytes;
    const header = {
      workItemId: itemId,
      name: "interrupted.bin",
      expectedSha256: digestOf(size, 65536),
      expectedSize: BigInt(size),
    };
    async function* interrupted() {
      let sent = 0;
      for await (const m of upload(header, content(size, 65536))) {
        yield m;
        if (++sent === 60) throw new Error("client crashed"); // ~3.7 MiB in
        await new Promise((r) => setImmediate(r));
      }
    }
    const f = await failure(kit.as("alice").uploadArtifact(interrupted()));
    expect(f.code).toBe(Code.CANCELLED);
    await eventually("the partial upload to be purged", async () => {
      const bytes = (await kit.svc.running.host.nats.jsm.streams.info(stream)).state.bytes;
      return bytes - bytesBefore < 64 * 1024;
    });
    expect(await objectNames()).toEqual(before);
    expect(
      (await kit.as("viewer").listArtifacts({ workItemId: itemId })).artifacts.map((a) => a.name),
    ).not.toContain("interrupted.bin");
  });
});

describe("uploads for a run", () => {
  const data = new TextEncoder().encode("run output");
  const header = (runId: string, fencingToken: bigint) => ({
    workItemId: itemId,
    runId,
    fencingToken,
    name: `out-${runId}.txt`,
    expectedSha256: sha256(data),
    expectedSize: BigInt(data.length),
  });
  const asAgent = (runId: string, token: bigint) =>
    kit.as("agent").uploadArtifact(upload(header(runId, token), [data]));

  it("accepts the agent holding the run's current lease", async () => {
    kit.runs.set("run-held", { workItemId: itemId, agentId: "agent-1", fencingToken: 3n });
    const { artifact } = await asAgent("run-held", 3n);
    expect(artifact).toMatchObject({ runId: "run-held", createdBy: "agent-1" });
  });

  it("refuses a stale agent with FAILED_PRECONDITION STALE_LEASE before reading any content", async () => {
    const cases: [string, DeclaredRun, string][] = [
      ["run-requeued", { workItemId: itemId, agentId: "agent-1", fencingToken: 4n }, "fencing token"],
      ["run-taken", { workItemId: itemId, agentId: "agent-2", fencingToken: 3n }, "another agent"],
      [
        "run-ended",
        { workItemId: itemId, agentId: "agent-1", fencingToken: 3n, state: RunState.SUCCEEDED },
        "SUCCEEDED",
      ],
    ];
    for (const [runId, run, why] of cases) {
      kit.runs.set(runId, run);
      const err = await failure(asAgent(runId, 3n));
      expect(err.code, runId).toBe(Code.FAILED_PRECONDITION);
      expect(err.reason, runId).toBe("STALE_LEASE");
      expect(err.err.message, runId).toContain(why);
    }
    const unknown = await failure(asAgent("run-unknown", 3n));
    expect(unknown.reason).toBe("STALE_LEASE");
    const stored = await kit.as("viewer").listArtifacts({ workItemId: itemId });
    expect(stored.artifacts.map((a) => a.runId)).not.toContain("run-requeued");
    expect(stored.artifacts.map((a) => a.runId)).not.toContain("run-taken");
  });

  it("refuses a run of another work item, and run uploads by anyone but an agent", async () => {
    kit.runs.set("run-elsewhere", { workItemId: "another-item", agentId: "agent-1", fencingToken: 3n });
    const elsewhere = await failure(asAgent("run-elsewhere", 3n));
    expect(elsewhere.code).toBe(Code.INVALID_ARGUMENT);
    kit.runs.set("run-of-alice", { workItemId: itemId, agentId: "agent-1", fencingToken: 3n });
    const asked = kit.runs.asked.length;
    const byUser = await failure(kit.as("alice").uploadArtifact(upload(header("run-of-alice", 3n), [data])));
    expect(byUser.code).toBe(Code.PERMISSION_DENIED);
    expect(kit.runs.asked.length).toBe(asked);
  });

  it("answers UNAVAILABLE, storing nothing, when the agent manager cannot be asked", async () => {
    const cut = await startKit({ AGENT_MANAGER_ADDR: "127.0.0.1:1", DOWNSTREAM_TIMEOUT: "500ms" });
    try {
      const { workItem } = await cut
        .as("alice")
        .createWorkItem({ projectId: cut.project, workItem: { title: "b", kind: WorkItemKind.BUILD } });
      const err = await failure(
        cut
          .as("agent")
          .uploadArtifact(upload({ ...header("run-x", 1n), workItemId: workItem?.id ?? "" }, [data])),
      );
      expect(err.code).toBe(Code.UNAVAILABLE);
      expect((await cut.as("viewer").listArtifacts({ workItemId: workItem?.id ?? "" })).artifacts).toEqual(
        [],
      );
    } finally {
      await cut.cleanup();
    }
  });
});
