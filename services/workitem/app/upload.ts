import type {
  UploadArtifactHeader,
  UploadArtifactRequest,
} from "../../../gen/codex/workitem/v1/artifact_pb.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import { invalidArgument } from "../errors.js";
import { BlobTooLargeError, type WrittenBlob } from "../store/blob-store.js";
import type { Deps } from "./deps.js";

export const MAX_CHUNK_BYTES = 1024 * 1024;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const CONTENT_TYPE = /^[\x21-\x7e]+\/[\x20-\x7e]+$/;

/** Reads the header an upload must start with; anything else is refused. */
export async function readHeader(it: AsyncIterator<UploadArtifactRequest>): Promise<UploadArtifactHeader> {
  const first = await it.next();
  if (first.done || first.value.payload.case !== "header") {
    throw invalidArgument("the first message of an upload must be a header", [
      { field: "header", description: "must be sent first" },
    ]);
  }
  return first.value.payload.value;
}

/** Checks a header against the contract and the configured size limit. */
export function checkHeader(h: UploadArtifactHeader, maxBytes: number): void {
  const bad = (field: string, description: string, reason?: "ARTIFACT_TOO_LARGE") => {
    throw invalidArgument(
      `header.${field} ${description}`,
      [{ field: `header.${field}`, description }],
      reason,
    );
  };
  const nameLength = [...h.name].length;
  if (nameLength < 1 || nameLength > 255 || h.name.includes("/") || h.name.includes("\u0000")) {
    bad("name", 'must be 1-255 characters without "/" or NUL');
  }
  if (h.contentType !== "" && (h.contentType.length > 255 || !CONTENT_TYPE.test(h.contentType))) {
    bad("content_type", "must be a MIME type");
  }
  if (!SHA256_HEX.test(h.expectedSha256)) bad("expected_sha256", "must be 64 lowercase hex characters");
  if (h.expectedSize < 0n) bad("expected_size", "must not be negative");
  if (h.expectedSize > BigInt(maxBytes))
    bad("expected_size", `exceeds the limit of ${maxBytes} bytes`, "ARTIFACT_TOO_LARGE");
  if (h.runId !== "" && !RUN_ID.test(h.runId)) bad("run_id", "must be a run id");
  if (h.runId !== "" && h.fencingToken === 0n) bad("fencing_token", "is required with run_id");
}

/** The content messages after the header, each a chunk of at most 1 MiB. */
async function* chunksOf(it: AsyncIterator<UploadArtifactRequest>): AsyncGenerator<Uint8Array> {
  for (;;) {
    const next = await it.next();
    if (next.done) return;
    const { payload } = next.value;
    if (payload.case !== "chunk") {
      throw invalidArgument("every message after the header must be a chunk", [
        { field: "chunk", description: "expected content, got another header" },
      ]);
    }
    if (payload.value.byteLength > MAX_CHUNK_BYTES) {
      throw invalidArgument("chunk over 1 MiB", [{ field: "chunk", description: "must be at most 1 MiB" }]);
    }
    yield payload.value;
  }
}

function mismatch(reason: "SIZE_MISMATCH" | "CHECKSUM_MISMATCH", description: string): ServiceError {
  const field = reason === "SIZE_MISMATCH" ? "header.expected_size" : "header.expected_sha256";
  return invalidArgument(
    `upload refused: ${description}; nothing was stored`,
    [{ field, description }],
    reason,
  );
}

/**
 * Streams the content into a temporary object while hashing it, then verifies size and
 * SHA-256 and promotes it to its content address. On any failure — a mismatch, a bad
 * message, a client that went away — the temporary object is removed and nothing becomes
 * visible. Returns the object name of the verified content.
 */
export async function receiveContent(
  deps: Deps,
  it: AsyncIterator<UploadArtifactRequest>,
  h: UploadArtifactHeader,
  signal: AbortSignal,
): Promise<string> {
  const blobs = deps.blobs();
  const expectedSize = Number(h.expectedSize);
  let written: WrittenBlob;
  try {
    written = await blobs.writeTemp(chunksOf(it), expectedSize, signal);
  } catch (err) {
    if (err instanceof BlobTooLargeError)
      throw mismatch("SIZE_MISMATCH", `content is larger than ${expectedSize} bytes`);
    if (err instanceof ServiceError) throw err;
    if (signal.aborted) throw new ServiceError(Code.CANCELLED, "upload interrupted; nothing was stored");
    throw err;
  }
  if (signal.aborted) {
    await blobs.discard(written.tempName);
    throw new ServiceError(Code.CANCELLED, "upload interrupted; nothing was stored");
  }
  if (written.size !== expectedSize) {
    await blobs.discard(written.tempName);
    throw mismatch("SIZE_MISMATCH", `content is ${written.size} bytes, expected ${expectedSize}`);
  }
  if (written.sha256 !== h.expectedSha256) {
    await blobs.discard(written.tempName);
    throw mismatch("CHECKSUM_MISMATCH", `content has sha256 ${written.sha256}, expected ${h.expectedSha256}`);
  }
  return blobs.promote(written.tempName, written.sha256);
}
