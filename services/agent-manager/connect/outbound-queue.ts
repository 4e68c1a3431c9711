/**
 * The manager's side of a Connect stream: messages are pushed from anywhere (the message loop,
 * the dispatcher, a cancellation, an answer) and the gRPC adapter pulls them in order.
 *
 * Why a queue of our own: a bidi handler returns one async iterable of responses, but most
 * manager messages are not answers to an agent message; they must go out when they happen.
 * `fail` ends the stream with an error status after what was queued before it is written.
 */
export class OutboundQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  #error: unknown;

  /** False once the stream ended: the item was not queued. */
  push(item: T): boolean {
    if (this.#ended) return false;
    this.#items.push(item);
    this.#signal();
    return true;
  }

  /** Ends the stream normally after the queued items. */
  end(): void {
    this.#ended = true;
    this.#signal();
  }

  /** Ends the stream with `error` (a ServiceError becomes its status) after the queued items. */
  fail(error: unknown): void {
    if (this.#ended) return;
    this.#error = error;
    this.#ended = true;
    this.#signal();
  }

  get ended(): boolean {
    return this.#ended;
  }

  get length(): number {
    return this.#items.length;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const next = this.#items.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.#ended) {
        if (this.#error !== undefined) throw this.#error;
        return;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
