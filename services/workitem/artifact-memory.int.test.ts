import { createCipheriv, createHash } from "node:crypto";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { UploadArtifactRequestSchema } from "../../gen/codex/workitem/v1/artifact_pb.js";
import { WorkItemKind } from "../../gen/codex/workitem/v1/work_item_pb.js";
import { type Kit, startKit } from "./test-kit.js";

const MiB = 1024 * 1024;
const SIZE = 50 * MiB;
const CHUNK = 256 * 1024;

let kit: Kit;
beforeAll(async () => {
  kit = await startKit({ ARTIFACT_MAX_BYTES: String(64 * MiB) });
});
afterAll(async () => kit?.cleanup());

setFlagsFromString("--expose-gc");
// Free array buffers during the forced GC, not later on a helper thread, so a sample right
// after it sees what is really still referenced.
setFlagsFromString("--no-concurrent-array-buffer-sweeping");
const gc = runInNewContext("gc") as () => void;

/** Deterministic pseudo-random content, produced chunk by chunk and never held whole. */
function* content(): Generator<Uint8Array> {
  const cipher = createCipheriv("aes-256-ctr", Buffer.alloc(32, 9), Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(CHUNK);
  for (let sent = 0; sent < SIZE; sent += CHUNK) yield cipher.update(zeros);
}

/**
 * Samples this process's memory while a transfer runs (service and client both live here).
 * `retained` is measured right after a forced full GC: what the process still holds, the
 * number a buffering implementation would grow by the artifact's size. `rss` is sampled
 * without forcing anything: what the OS sees, garbage awaiting collection included.
 */
function sampler() {
  gc();
  const base = process.memoryUsage();
  const peak = { retained: 0, rss: 0, heap: 0, arrayBuffers: 0 };
  const fast = setInterval(() => {
    const m = process.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss - base.rss);
  }, 5);
  const slow = setInterval(() => {
    gc();
    const m = process.memoryUsage();
    const heap = m.heapUsed - base.heapUsed;
    const arrayBuffers = m.arrayBuffers - base.arrayBuffers;
    peak.heap = Math.max(peak.heap, heap);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, arrayBuffers);
    peak.retained = Math.max(peak.retained, heap + arrayBuffers);
  }, 400); // a full GC of this process takes tens of ms: sample often enough, not more
  return {
    peak,
    stop: () => {
      clearInterval(fast);
      clearInterval(slow);
    },
  };
}

it("round-trips a 50 MiB artifact with the service's memory bounded well below its size", {
  timeout: 120_000,
}, async () => {
  const item = await kit
    .as("alice")
    .createWorkItem({ projectId: kit.project, workItem: { title: "big", kind: WorkItemKind.BUILD } });
  const expected = createHash("sha256");
  for (const c of content()) expected.update(c);
  const digest = expected.digest("hex");

  const up = sampler();
  async function* messages(): AsyncGenerator<MessageInitShape<typeof UploadArtifactRequestSchema>> {
    yield {
      payload: {
        case: "header",
        value: {
          workItemId: item.workItem?.id ?? "",
          name: "big.bin",
          expectedSha256: digest,
          expectedSize: BigInt(SIZE),
        },
      },
    };
    for (const c of content()) yield { payload: { case: "chunk", value: c } };
  }
  const stored = await kit.as("alice").uploadArtifact(messages(), { timeoutMs: 110_000 });
  up.stop();
  expect(stored.artifact?.sizeBytes).toBe(BigInt(SIZE));

  const down = sampler();
  const actual = createHash("sha256");
  let size = 0;
  let largest = 0;
  for await (const msg of kit.as("viewer").downloadArtifact({ artifactId: stored.artifact?.id ?? "" })) {
    actual.update(msg.data);
    size += msg.data.byteLength;
    largest = Math.max(largest, msg.data.byteLength);
  }
  down.stop();
  expect(size).toBe(SIZE);
  expect(actual.digest("hex")).toBe(digest);
  expect(largest).toBeLessThanOrEqual(MiB);

  const report = { upload: up.peak, download: down.peak };
  console.info(
    "memory growth (MiB)",
    JSON.stringify(report, (_k, v) => (typeof v === "number" ? +(v / MiB).toFixed(1) : v)),
  );
  for (const phase of [up.peak, down.peak]) {
    // Held memory stays a small multiple of the in-flight window (client and service together);
    // a buffering implementation would hold the whole 50 MiB. RSS also counts garbage not yet
    // collected and allocator slack, hence the looser bound — still well below the size.
    expect(phase.retained).toBeLessThan(16 * MiB);
    expect(phase.rss).toBeLessThan(36 * MiB);
  }
});
