import { EventEmitter } from "node:events";
import { describe, expect, it, vi } from "vitest";
import { type Component, Lifecycle, type LifecycleState, type StopContext } from "./lifecycle.js";
import { createLogger } from "./logging.js";

const logger = createLogger({ service: "lifecycle-test", level: "silent" });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function recorder() {
  const log: string[] = [];
  const component = (name: string, opts: { failStart?: boolean; failStop?: boolean } = {}): Component => ({
    async start() {
      await sleep(1);
      if (opts.failStart) throw new Error(`${name} cannot start`);
      log.push(`start ${name}`);
    },
    async stop() {
      log.push(`stop ${name}`);
      if (opts.failStop) throw new Error(`${name} cannot stop`);
    },
  });
  return { log, component };
}

function watch(lc: Lifecycle): LifecycleState[] {
  const states: LifecycleState[] = [lc.state];
  lc.onStateChange((s) => states.push(s));
  return states;
}

describe("Lifecycle", () => {
  it("starts in the order added and stops in reverse", async () => {
    const { log, component } = recorder();
    const lc = new Lifecycle({ logger });
    const states = watch(lc);
    lc.add("postgres", component("postgres")).add("nats", component("nats")).add("grpc", component("grpc"));
    lc.add("no-start", { stop: async () => void log.push("stop no-start") });
    await lc.start();
    expect(lc.state).toBe("RUNNING");
    await lc.stop("test");
    expect(log).toEqual([
      "start postgres",
      "start nats",
      "start grpc",
      "stop no-start",
      "stop grpc",
      "stop nats",
      "stop postgres",
    ]);
    expect(states).toEqual(["INITIALIZED", "STARTING", "RUNNING", "DRAINING", "STOPPED"]);
    expect(() => lc.add("late", component("late"))).toThrow(/STOPPED/);
  });

  it("is idempotent: concurrent and repeated stops share one shutdown", async () => {
    let stops = 0;
    const lc = new Lifecycle().add("x", {
      stop: async () => {
        stops++;
        await sleep(5);
      },
    });
    await lc.start();
    const a = lc.stop("a");
    const b = lc.stop("b");
    expect(a).toBe(b);
    await Promise.all([a, b, lc.stop("c")]);
    expect(stops).toBe(1);
  });

  it("gives components the reason, a deadline and a signal aborted when the grace time runs out", async () => {
    let seen: StopContext | undefined;
    let abortedAfterMs = -1;
    const lc = new Lifecycle().add("grpc", {
      async stop(ctx) {
        seen = ctx;
        const t0 = Date.now();
        await new Promise((r) => ctx.signal.addEventListener("abort", r, { once: true }));
        abortedAfterMs = Date.now() - t0;
      },
    });
    await lc.start();
    const before = Date.now();
    await lc.stop("deploy", { graceMs: 30 });
    expect(seen?.reason).toBe("deploy");
    expect(seen?.deadline).toBeGreaterThanOrEqual(before + 30);
    expect(abortedAfterMs).toBeGreaterThanOrEqual(25);
    expect(lc.state).toBe("STOPPED");
  });

  it("stops what started when a start fails, then reports FAILED", async () => {
    const { log, component } = recorder();
    const lc = new Lifecycle({ logger });
    const states = watch(lc);
    lc.add("postgres", component("postgres")).add("nats", component("nats", { failStart: true }));
    lc.add("grpc", component("grpc"));
    await expect(lc.start()).rejects.toThrow("nats cannot start");
    expect(log).toEqual(["start postgres", "stop postgres"]);
    expect(states).toEqual(["INITIALIZED", "STARTING", "FAILED"]);
    await lc.stop("after failure");
    expect(log).toHaveLength(2);
  });

  it("keeps stopping the others when one stop fails, and ends FAILED", async () => {
    const { log, component } = recorder();
    const lc = new Lifecycle({ logger })
      .add("a", component("a"))
      .add("b", component("b", { failStop: true }));
    await lc.start();
    await lc.stop("test");
    expect(log).toEqual(["start a", "start b", "stop b", "stop a"]);
    expect(lc.state).toBe("FAILED");
  });

  it("stops without starting the rest when stop is requested during start", async () => {
    const { log, component } = recorder();
    const lc = new Lifecycle().add("a", component("a")).add("b", component("b"));
    const started = lc.start();
    const stopped = lc.stop("early");
    await Promise.all([started, stopped]);
    expect(log).toEqual(["start a", "stop a"]);
    expect(lc.state).toBe("STOPPED");
  });
});

describe("Lifecycle.handleSignals", () => {
  const FORCE_MS = 300;

  function setup(stop: () => Promise<void>) {
    const source = new EventEmitter();
    const exits: number[] = [];
    let exitedAt = 0;
    const lc = new Lifecycle().add("c", { stop });
    const dispose = lc.handleSignals({
      graceMs: 20,
      forceMs: FORCE_MS,
      logger,
      exit: (c) => {
        exits.push(c);
        exitedAt = Date.now();
      },
      source,
    });
    return { source, exits, lc, dispose, exitedAt: () => exitedAt };
  }

  it("stops gracefully on SIGTERM and exits 0", async () => {
    const { source, exits, lc, dispose } = setup(async () => sleep(5));
    await lc.start();
    source.emit("SIGTERM");
    expect(lc.state).toBe("DRAINING");
    await vi.waitFor(() => expect(exits).toEqual([0]));
    expect(lc.state).toBe("STOPPED");
    await sleep(FORCE_MS + 50);
    expect(exits).toEqual([0]); // the force timer was cleared
    dispose();
    expect(source.listenerCount("SIGTERM") + source.listenerCount("SIGINT")).toBe(0);
  });

  it("exits 1 when stop hangs past the force time, not before", async () => {
    const { source, exits, lc, dispose, exitedAt } = setup(() => new Promise<void>(() => undefined));
    await lc.start();
    const t0 = Date.now();
    source.emit("SIGINT");
    await sleep(20);
    expect(exits).toEqual([]);
    await vi.waitFor(() => expect(exits).toEqual([1]), { timeout: 2_000 });
    expect(exitedAt() - t0).toBeGreaterThanOrEqual(FORCE_MS - 5);
    expect(lc.state).toBe("DRAINING");
    dispose();
  });

  it("exits 1 at once on a second signal", async () => {
    const { source, exits, lc, dispose } = setup(() => new Promise<void>(() => undefined));
    await lc.start();
    source.emit("SIGTERM");
    source.emit("SIGINT");
    expect(exits).toEqual([1]);
    await sleep(FORCE_MS + 50);
    expect(exits).toEqual([1]); // force timer cancelled by the second signal
    dispose();
  });

  it("exits 1 when a component failed to stop", async () => {
    const { source, exits, lc, dispose } = setup(async () => {
      throw new Error("stuck socket");
    });
    await lc.start();
    source.emit("SIGTERM");
    await vi.waitFor(() => expect(exits).toEqual([1]));
    expect(lc.state).toBe("FAILED");
    dispose();
  });
});
