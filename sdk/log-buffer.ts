/**
 * Batches one run's log output into LogChunks, so a chatty step costs a few stream messages per
 * flush instead of one per line, with a hard bound on memory.
 *
 * Chunk seqs: the contract wants them strictly increasing per run *across claims* (a run re-
 * claimed by another agent keeps its stored chunks, and chunks with a known seq are ignored).
 * An agent cannot know where the previous holder stopped, but it knows its fencing token, which
 * strictly increases with every claim: seq = token·2³² + n is therefore above anything an
 * earlier holder could have sent (fewer than 2³² chunks per claim).
 *
 * When output arrives faster than it can be sent (or while disconnected) and the buffer is
 * full, whole lines are dropped and counted; the next batch starts with a SYSTEM line saying
 * how much was lost, so a truncated log never looks complete.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type LogChunkSchema, LogStream } from "../gen/codex/agentmanager/v1/logs_pb.js";

export type LogStreamName = "stdout" | "stderr" | "system";
export type ChunkInit = MessageInitShape<typeof LogChunkSchema>;

/** Largest chunk the contract accepts. */
export const MAX_CHUNK_BYTES = 64 * 1024;
/** Largest batch (sum of chunk data) the contract accepts. */
export const MAX_BATCH_BYTES = 1024 * 1024;

const STREAMS: Record<LogStreamName, LogStream> = {
  stdout: LogStream.STDOUT,
  stderr: LogStream.STDERR,
  system: LogStream.SYSTEM,
};

interface OpenChunk {
  stream: LogStream;
  step: number | undefined;
  parts: Buffer[];
  bytes: number;
  time: Date;
}

export class RunLogBuffer {
  #open: OpenChunk[] = [];
  #bytes = 0;
  #next: bigint;
  #droppedLines = 0;
  #droppedBytes = 0;

  constructor(
    fencingToken: bigint,
    private readonly maxBufferedBytes: number,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.#next = (fencingToken << 32n) + 1n;
  }

  /** Bytes waiting to be taken. */
  get bufferedBytes(): number {
    return this.#bytes;
  }

  /**
   * Adds text as one or more lines (a trailing newline is added when missing). Returns false
   * when the buffer is full and the text was dropped.
   */
  append(stream: LogStreamName, text: string, step?: number): boolean {
    const data = Buffer.from(text.endsWith("\n") ? text : `${text}\n`, "utf8");
    if (this.#bytes + data.length > this.maxBufferedBytes) {
      this.#droppedLines += 1;
      this.#droppedBytes += data.length;
      return false;
    }
    this.#add(STREAMS[stream], step, data);
    return true;
  }

  /** Takes up to `maxBytes` of buffered output as chunks with their seqs, oldest first. */
  take(maxBytes = MAX_BATCH_BYTES): ChunkInit[] {
    this.#reportDrops();
    const out: ChunkInit[] = [];
    let taken = 0;
    while (this.#open.length > 0) {
      const c = this.#open[0]!;
      if (out.length > 0 && taken + c.bytes > maxBytes) break;
      this.#open.shift();
      this.#bytes -= c.bytes;
      taken += c.bytes;
      const chunk: ChunkInit = {
        seq: this.#next,
        stream: c.stream,
        data: Buffer.concat(c.parts),
        time: timestampFromDate(c.time),
      };
      if (c.step !== undefined) chunk.stepIndex = c.step;
      this.#next += 1n;
      out.push(chunk);
    }
    return out;
  }

  #add(stream: LogStream, step: number | undefined, data: Buffer): void {
    for (let at = 0; at < data.length; ) {
      const last = this.#open.at(-1);
      const fits = last && last.stream === stream && last.step === step && last.bytes < MAX_CHUNK_BYTES;
      const target = fits ? last : this.#openChunk(stream, step);
      const part = data.subarray(at, at + (MAX_CHUNK_BYTES - target.bytes));
      target.parts.push(part);
      target.bytes += part.length;
      this.#bytes += part.length;
      at += part.length;
    }
  }

  #openChunk(stream: LogStream, step: number | undefined): OpenChunk {
    const chunk: OpenChunk = { stream, step, parts: [], bytes: 0, time: this.now() };
    this.#open.push(chunk);
    return chunk;
  }

  #reportDrops(): void {
    if (this.#droppedLines === 0) return;
    const note = `[agent] log backlog full: dropped ${this.#droppedLines} line(s), ${this.#droppedBytes} bytes\n`;
    this.#droppedLines = 0;
    this.#droppedBytes = 0;
    // The notice leads the next batch, close to the gap; it may exceed the bound (it is tiny).
    const data = Buffer.from(note, "utf8");
    this.#open.unshift({
      stream: LogStream.SYSTEM,
      step: undefined,
      parts: [data],
      bytes: data.length,
      time: this.now(),
    });
    this.#bytes += data.length;
  }
}
