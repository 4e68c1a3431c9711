import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import type { WorkerState } from "./lifecycle.js";
import { handleSignals } from "./signals.js";

function fakeWorker(stopMs: number, final: WorkerState) {
  const w = {
    state: "RUNNING" as WorkerState,
    stops: [] as string[],
    stop(reason: string) {
      w.stops.push(reason);
      return new Promise<void>((r) =>
        setTimeout(() => {
          w.state = final;
          r();
        }, stopMs),
      );
    },
  };
  return w;
}

describe("handleSignals", () => {
  it("stops gracefully on SIGTERM and exits 0 when the worker STOPPED", async () => {
    const source = new EventEmitter();
    const worker = fakeWorker(10, "STOPPED");
    const code = new Promise<number>((exit) => handleSignals(worker, { forceMs: 1_000, source, exit }));
    source.emit("SIGTERM", "SIGTERM");
    expect(await code).toBe(0);
    expect(worker.stops).toEqual(["received SIGTERM"]);
  });

  it("exits 1 when the force time passes first", async () => {
    const source = new EventEmitter();
    const worker = fakeWorker(500, "STOPPED");
    const code = new Promise<number>((exit) => handleSignals(worker, { forceMs: 20, source, exit }));
    source.emit("SIGINT", "SIGINT");
    expect(await code).toBe(1);
  });

  it("exits 1 at once on a second signal", async () => {
    const source = new EventEmitter();
    const worker = fakeWorker(500, "STOPPED");
    const codes: number[] = [];
    handleSignals(worker, { forceMs: 1_000, source, exit: (c) => codes.push(c) });
    source.emit("SIGTERM", "SIGTERM");
    source.emit("SIGTERM", "SIGTERM");
    expect(codes).toEqual([1]);
    expect(worker.stops).toHaveLength(1);
  });
});
