/**
 * Wakes log watchers of a run when lines were stored or the run ended. In-process only; a
 * watcher also re-reads on a short timer, which covers lines stored by another replica.
 */
export class LogHub {
  readonly #waiting = new Map<string, Set<() => void>>();

  /** Resolves at the next notify of the run, after `timeoutMs`, or when `signal` aborts. */
  wait(runId: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiting.get(runId);
      if (!set) {
        set = new Set();
        this.#waiting.set(runId, set);
      }
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        const s = this.#waiting.get(runId);
        s?.delete(done);
        if (s?.size === 0) this.#waiting.delete(runId);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal.addEventListener("abort", done, { once: true });
      set.add(done);
    });
  }

  notify(runId: string): void {
    const set = this.#waiting.get(runId);
    if (!set) return;
    for (const wake of [...set]) wake();
  }
}
