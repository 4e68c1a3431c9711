/**
 * Cumulative acknowledgement of agent messages (Ack.acked_seq): every message with a seq up to
 * the watermark is processed and durable. Messages are processed concurrently (one chain per
 * run keeps each run's order), so the watermark is the highest seq received below which nothing
 * is still in progress.
 */
export class AckTracker {
  readonly #inProgress = new Set<bigint>();
  #maxReceived = 0n;
  #lastSent = 0n;

  received(seq: bigint): void {
    this.#inProgress.add(seq);
    if (seq > this.#maxReceived) this.#maxReceived = seq;
  }

  done(seq: bigint): void {
    this.#inProgress.delete(seq);
  }

  /** Everything at or below this seq is processed. */
  watermark(): bigint {
    let low = this.#maxReceived;
    for (const seq of this.#inProgress) if (seq - 1n < low) low = seq - 1n;
    return low < 0n ? 0n : low;
  }

  /** The watermark if it moved since the last call, else undefined. */
  advance(): bigint | undefined {
    const w = this.watermark();
    if (w <= this.#lastSent) return undefined;
    this.#lastSent = w;
    return w;
  }
}
