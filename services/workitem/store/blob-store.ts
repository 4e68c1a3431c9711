import { createHash, randomUUID } from "node:crypto";
import type { JetStreamManager } from "@nats-io/jetstream";
import { type ObjectStore, Objm, StorageType, setSha256Backend } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";

/** What a finished temporary write measured. */
export interface WrittenBlob {
  tempName: string;
  sha256: string;
  size: number;
}

/**
 * The next item of `it`, or a rejection as soon as `signal` aborts (a client that went away
 * may never send another message). Not `Promise.race` with one long-lived abort promise:
 * every race would leave a reaction on it that keeps its settled value — each chunk — alive.
 */
function nextOrAbort<T>(it: AsyncIterator<T>, signal: AbortSignal): Promise<IteratorResult<T>> {
  if (signal.aborted) return Promise.reject(signal.reason ?? new Error("aborted"));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    it.next().then(
      (result) => {
        signal.removeEventListener("abort", onAbort);
        resolve(result);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/** Thrown when the content grows past the size the caller allowed; nothing is kept. */
export class BlobTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`content exceeds ${limit} bytes`);
  }
}

const TEMP_PREFIX = "tmp/";
const CONTENT_PREFIX = "sha256/";

/**
 * Artifact bytes in a NATS JetStream Object Store bucket, content-addressed by SHA-256.
 *
 * Why this shape: uploads are streamed chunk by chunk into a temporary object while they are
 * hashed, so memory stays bounded whatever the size; only verified content is promoted to its
 * content address (`sha256/<hex>`, a metadata-only rename), and a failed or interrupted
 * upload is purged. Content is immutable, so identical uploads share one object. Reads go
 * chunk by chunk with direct gets, so a slow reader never makes the service buffer a file.
 */
export class BlobStore {
  private constructor(
    private readonly os: ObjectStore,
    private readonly jsm: JetStreamManager,
    readonly bucket: string,
    private readonly chunkBytes: number,
  ) {}

  static async open(nc: NatsConnection, jsm: JetStreamManager, bucket: string, chunkBytes: number) {
    // The Object Store hashes every chunk too; Node's native SHA-256 is many times faster than
    // the portable default. Process-wide, and harmless to set again.
    setSha256Backend("native");
    const os = await new Objm(nc).create(bucket, { storage: StorageType.File });
    return new BlobStore(os, jsm, bucket, chunkBytes);
  }

  /** The object name of content with this SHA-256. */
  static contentName(sha256: string): string {
    return `${CONTENT_PREFIX}${sha256}`;
  }

  /**
   * Streams `source` into a new temporary object while hashing it. Rejects (and the Object
   * Store purges what was written) when the source fails, is aborted, or passes `maxBytes`.
   */
  async writeTemp(
    source: AsyncIterable<Uint8Array>,
    maxBytes: number,
    signal: AbortSignal,
  ): Promise<WrittenBlob> {
    const tempName = `${TEMP_PREFIX}${Date.now()}-${randomUUID()}`;
    const hash = createHash("sha256");
    let size = 0;
    const it = source[Symbol.asyncIterator]();
    // Pull-based with no read-ahead: the next gRPC message is asked for only when the Object
    // Store has stored the previous chunk, so at most a chunk or two is ever in memory.
    const stream = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          const next = await nextOrAbort(it, signal);
          if (next.done) {
            controller.close();
            return;
          }
          size += next.value.byteLength;
          if (size > maxBytes) throw new BlobTooLargeError(maxBytes);
          hash.update(next.value);
          controller.enqueue(next.value);
        },
        async cancel() {
          await it.return?.();
        },
      },
      { highWaterMark: 0 },
    );
    await this.os.put({ name: tempName, options: { max_chunk_size: this.chunkBytes } }, stream);
    return { tempName, sha256: hash.digest("hex"), size };
  }

  /**
   * Makes verified temporary content visible under its content address. When that content is
   * already stored, the temporary copy is dropped instead.
   */
  async promote(tempName: string, sha256: string): Promise<string> {
    const name = BlobStore.contentName(sha256);
    const existing = await this.os.info(name);
    if (existing && !existing.deleted) {
      await this.discard(tempName);
      return name;
    }
    try {
      await this.os.update(tempName, { name });
    } catch (err) {
      // A concurrent upload of the same content won the rename: ours is a duplicate.
      const now = await this.os.info(name);
      if (!now || now.deleted) throw err;
      await this.discard(tempName);
    }
    return name;
  }

  /** Removes a temporary object and its chunks; never throws (best effort cleanup). */
  async discard(tempName: string): Promise<void> {
    await this.os.delete(tempName).catch(() => undefined);
  }

  /** Whether content is stored under `name`. */
  async exists(name: string): Promise<boolean> {
    const info = await this.os.info(name);
    return info !== null && !info.deleted;
  }

  /**
   * Yields the content of `name` from byte `offset`, one stored chunk at a time, verifying
   * the SHA-256 of the whole content when reading from the start.
   */
  async *read(
    name: string,
    offset: number,
    expectedSha256: string,
  ): AsyncGenerator<{ data: Uint8Array; offset: number }> {
    const info = await this.os.info(name);
    if (!info || info.deleted) throw new Error(`object ${name} is missing from bucket ${this.bucket}`);
    const stream = `OBJ_${this.bucket}`;
    const subject = `$O.${this.bucket}.C.${info.nuid}`;
    const hash = offset === 0 ? createHash("sha256") : undefined;
    let seq = 0;
    let position = 0;
    for (let i = 0; i < info.chunks; i++) {
      const msg = await this.jsm.direct.getMessage(stream, { seq: seq + 1, next_by_subj: subject });
      if (!msg) throw new Error(`object ${name}: chunk ${i} of ${info.chunks} is missing`);
      seq = msg.seq;
      const data = msg.data;
      hash?.update(data);
      const end = position + data.byteLength;
      if (end > offset) {
        const from = Math.max(0, offset - position);
        yield { data: from === 0 ? data : data.subarray(from), offset: position + from };
      }
      position = end;
    }
    if (position !== info.size) throw new Error(`object ${name}: read ${position} of ${info.size} bytes`);
    if (hash && hash.digest("hex") !== expectedSha256)
      throw new Error(`object ${name}: content does not match its sha256`);
  }

  /** Deletes temporary objects older than `maxAgeMs` (left behind by a crash mid-upload). */
  async sweepTemp(maxAgeMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const info of await this.os.list()) {
      if (info.deleted || !info.name.startsWith(TEMP_PREFIX)) continue;
      if (now - Date.parse(info.mtime) < maxAgeMs) continue;
      await this.discard(info.name);
      removed++;
    }
    return removed;
  }

  /** Deletes the whole bucket (tests). */
  async destroy(): Promise<void> {
    await this.os.destroy();
  }
}
