/**
 * SIGTERM/SIGINT handling for processes built on the SDK: the first signal starts the worker's
 * graceful stop and arms the force timer; the process exits 0 when the worker STOPPED cleanly,
 * 1 when it FAILED, when the force time passed, or on a second signal (an operator insisting).
 */

import type { WorkerState } from "./lifecycle.js";
import type { SdkLogger } from "./types.js";

export interface Stoppable {
  stop(reason: string): Promise<void>;
  readonly state: WorkerState;
}

export interface SignalSource {
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface SignalOptions {
  /** Hard limit from the first signal. */
  forceMs: number;
  logger?: SdkLogger;
  signals?: readonly NodeJS.Signals[];
  source?: SignalSource;
  exit?: (code: number) => void;
}

/** Installs the handlers; returns a function removing them. */
export function handleSignals(worker: Stoppable, opts: SignalOptions): () => void {
  const source = opts.source ?? process;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const signals = opts.signals ?? ["SIGTERM", "SIGINT"];
  let received = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      opts.logger?.warn({ signal }, "second signal: exiting now");
      exit(1);
      return;
    }
    received = true;
    opts.logger?.info({ signal, forceMs: opts.forceMs }, "signal received: stopping gracefully");
    const force = setTimeout(() => {
      opts.logger?.error({ forceMs: opts.forceMs }, "force time passed: exiting");
      exit(1);
    }, opts.forceMs);
    force.unref();
    void worker.stop(`received ${signal}`).then(
      () => {
        clearTimeout(force);
        exit(worker.state === "STOPPED" ? 0 : 1);
      },
      () => exit(1),
    );
  };
  for (const s of signals) source.on(s, onSignal);
  return () => {
    for (const s of signals) source.off(s, onSignal);
  };
}
