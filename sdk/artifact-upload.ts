/**
 * Artifact upload over WorkItemService.UploadArtifact (client streaming). The header must state
 * the content's SHA-256 and size up front, but a handler's data is a one-pass stream: it is
 * spooled to a temporary file while hashing (memory stays at one chunk whatever the size),
 * then streamed in 1 MiB chunks. The spool also makes the upload repeatable, so UNAVAILABLE is
 * retried with backoff under one request id (the service deduplicates by content anyway).
 */
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type {
  Artifact,
  UploadArtifactHeaderSchema,
  UploadArtifactRequestSchema,
} from "../gen/codex/workitem/v1/artifact_pb.js";
import { Code, ServiceError } from "../mesh/errors.js";
import { retry } from "../mesh/resilience/retry.js";
import type { WorkItemClient } from "./connection.js";

const CHUNK_BYTES = 1024 * 1024;

export interface UploadTarget {
  workItemId: string;
  runId: string;
  fencingToken: bigint;
}

export interface UploadOptions {
  headers: () => Record<string, string>;
  signal: AbortSignal;
  timeoutMs?: number;
  attempts?: number;
}

type RequestInit = MessageInitShape<typeof UploadArtifactRequestSchema>;

/** Uploads `data` as artifact `name` of the run and returns the stored artifact. */
export async function uploadArtifact(
  client: WorkItemClient,
  target: UploadTarget,
  file: { name: string; contentType: string; data: AsyncIterable<Uint8Array> | Uint8Array | string },
  opts: UploadOptions,
): Promise<Artifact> {
  const dir = await mkdtemp(join(tmpdir(), "codex-artifact-"));
  try {
    const path = join(dir, "content");
    const { sha256, size } = await spool(file.data, path, opts.signal);
    const header = {
      workItemId: target.workItemId,
      runId: target.runId,
      fencingToken: target.fencingToken,
      name: file.name,
      contentType: file.contentType,
      expectedSha256: sha256,
      expectedSize: BigInt(size),
      requestId: randomUUID(),
    };
    const res = await retry(
      () =>
        client.uploadArtifact(requests(header, path), {
          headers: opts.headers(),
          signal: opts.signal,
          timeoutMs: opts.timeoutMs ?? 600_000,
        }),
      {
        maxAttempts: opts.attempts ?? 4,
        baseMs: 200,
        capMs: 5_000,
        signal: opts.signal,
        isRetryable: (e) => e instanceof ServiceError && e.code === Code.UNAVAILABLE,
      },
    );
    if (!res.artifact) throw new ServiceError(Code.INTERNAL, "upload returned no artifact");
    return res.artifact;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function spool(
  data: AsyncIterable<Uint8Array> | Uint8Array | string,
  path: string,
  signal: AbortSignal,
): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  const source =
    typeof data === "string" ? [Buffer.from(data, "utf8")] : data instanceof Uint8Array ? [data] : data;
  async function* hashing() {
    for await (const chunk of source) {
      hash.update(chunk);
      size += chunk.length;
      yield chunk;
    }
  }
  await pipeline(hashing, createWriteStream(path), { signal });
  return { sha256: hash.digest("hex"), size };
}

async function* requests(header: MessageInitShape<typeof UploadArtifactHeaderSchema>, path: string) {
  yield { payload: { case: "header", value: header } } as RequestInit;
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_BYTES })) {
    yield { payload: { case: "chunk", value: chunk as Buffer } } as RequestInit;
  }
}
