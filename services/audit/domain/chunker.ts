/** One piece of an export file, ending on a record boundary. */
export interface Chunk {
  data: Uint8Array;
  recordsCount: number;
  /** 0n when the chunk holds no record (header only, or an empty export). */
  firstSequence: bigint;
  lastSequence: bigint;
}

/**
 * Packs rendered records into chunks of at most `limitBytes`, never splitting a record, so a
 * consumer can process each chunk on its own. Memory stays at one chunk whatever the export
 * size. A single record larger than the limit travels alone in an oversized chunk rather than
 * being cut or dropped (the trail must export completely; gRPC's message limit is 4 MiB).
 */
export class ExportChunker {
  readonly #limit: number;
  #parts: Buffer[] = [];
  #bytes = 0;
  #count = 0;
  #first = 0n;
  #last = 0n;

  /** `header` (e.g. the CSV header row) starts the first chunk. */
  constructor(limitBytes: number, header = "") {
    this.#limit = limitBytes;
    if (header !== "") this.#append(Buffer.from(header, "utf8"));
  }

  /** Adds one rendered record; returns the previous chunk when this record did not fit in it. */
  add(text: string, sequence: bigint): Chunk | undefined {
    const buf = Buffer.from(text, "utf8");
    const full = this.#bytes > 0 && this.#bytes + buf.length > this.#limit ? this.flush() : undefined;
    this.#append(buf);
    if (this.#count === 0) this.#first = sequence;
    this.#count++;
    this.#last = sequence;
    return full;
  }

  /** Returns what is buffered as a chunk (possibly empty) and starts a new one. */
  flush(): Chunk {
    const chunk: Chunk = {
      data: Buffer.concat(this.#parts, this.#bytes),
      recordsCount: this.#count,
      firstSequence: this.#first,
      lastSequence: this.#last,
    };
    this.#parts = [];
    this.#bytes = 0;
    this.#count = 0;
    this.#first = 0n;
    this.#last = 0n;
    return chunk;
  }

  #append(buf: Buffer): void {
    this.#parts.push(buf);
    this.#bytes += buf.length;
  }
}
