import type { Logger } from "../../../mesh/logging.js";

/**
 * A background loop that runs `round` again after the delay it returns, or earlier when woken.
 *
 * Why one helper: the promoter, the reconciler and the effects worker all follow "do a round;
 * sleep until the next thing is due or someone tells us there is work; back off on errors",
 * and each should stop promptly without a round being cut in half.
 */
export class WakeableLoop {
  readonly #name: string;
  readonly #logger: Logger;
  readonly #round: () => Promise<number>;
  readonly #maxIdleMs: number;
  #running = false;
  #woken = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;

  /** `round` returns how long to sleep (ms) before the next round; 0 runs again at once. */
  constructor(name: string, logger: Logger, round: () => Promise<number>, maxIdleMs: number) {
    this.#name = name;
    this.#logger = logger;
    this.#round = round;
    this.#maxIdleMs = maxIdleMs;
  }

  async start(): Promise<void> {
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
  }

  /** Runs the next round as soon as the current one (if any) finished. */
  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (this.#running) {
      let delay: number;
      this.#woken = false;
      try {
        delay = Math.min(await this.#round(), this.#maxIdleMs);
        failures = 0;
      } catch (err) {
        failures++;
        delay = Math.min(100 * 2 ** failures, 10_000);
        if (this.#running) this.#logger.warn({ err, loop: this.#name }, "background round failed; retrying");
      }
      if (delay > 0) await this.#sleep(delay);
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#woken || !this.#running) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#wake?.(), ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }
}
