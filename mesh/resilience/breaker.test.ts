import { afterEach, describe, expect, it } from "vitest";
import { type Breaker, BreakerOpenError, type BreakerState, createBreaker } from "./breaker.js";

class CodedError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const breakers: Breaker<never[], unknown>[] = [];
afterEach(() => {
  for (const b of breakers.splice(0)) b.shutdown();
});

/** A downstream whose health the test controls. */
function downstream() {
  const d = {
    healthy: false,
    calls: 0,
    call: async (x: number) => {
      d.calls++;
      if (!d.healthy) throw new CodedError("UNAVAILABLE");
      return x * 2;
    },
  };
  return d;
}

function track<A extends unknown[], R>(b: Breaker<A, R>): Breaker<A, R> {
  breakers.push(b as unknown as Breaker<never[], unknown>);
  return b;
}

describe("createBreaker", () => {
  it("opens after the failure threshold, fails fast, then half-opens and closes on success", async () => {
    const d = downstream();
    const states: BreakerState[] = [];
    const b = track(
      createBreaker("projects", d.call, {
        volumeThreshold: 4,
        errorThresholdPercentage: 50,
        resetTimeout: 60,
        onStateChange: (s, name) => {
          expect(name).toBe("projects");
          states.push(s);
        },
      }),
    );
    expect(b.state).toBe("closed");
    for (let i = 0; i < 4; i++) await expect(b.fire(i)).rejects.toThrow("UNAVAILABLE");
    expect(b.state).toBe("open");
    expect(d.calls).toBe(4);

    // Open: the downstream is not called and the error says when to come back.
    const err = await b.fire(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BreakerOpenError);
    expect((err as BreakerOpenError).breaker).toBe("projects");
    expect((err as BreakerOpenError).retryAfterMs).toBeGreaterThan(0);
    expect((err as BreakerOpenError).retryAfterMs).toBeLessThanOrEqual(60);
    expect(d.calls).toBe(4);

    await sleep(90);
    expect(b.state).toBe("half_open");
    d.healthy = true;
    await expect(b.fire(21)).resolves.toBe(42);
    expect(b.state).toBe("closed");
    expect(states).toEqual(["closed", "open", "half_open", "closed"]);
  });

  it("re-opens when the half-open trial call fails", async () => {
    const d = downstream();
    const b = track(createBreaker("notify", d.call, { volumeThreshold: 1, resetTimeout: 40 }));
    await expect(b.fire(1)).rejects.toThrow("UNAVAILABLE");
    expect(b.state).toBe("open");
    await sleep(60);
    expect(b.state).toBe("half_open");
    await expect(b.fire(1)).rejects.toThrow("UNAVAILABLE");
    expect(b.state).toBe("open");
    expect(d.calls).toBe(2);
  });

  it("does not open on errors that isFailure rejects (e.g. NOT_FOUND), but still rethrows them", async () => {
    let calls = 0;
    const b = track(
      createBreaker(
        "artifacts",
        async () => {
          calls++;
          throw new CodedError("NOT_FOUND");
        },
        { volumeThreshold: 2, isFailure: (e) => !(e instanceof CodedError && e.code === "NOT_FOUND") },
      ),
    );
    for (let i = 0; i < 20; i++) await expect(b.fire()).rejects.toThrow("NOT_FOUND");
    expect(b.state).toBe("closed");
    expect(calls).toBe(20);
  });

  it("stays closed below the volume threshold and below the error percentage", async () => {
    const d = downstream();
    const b = track(createBreaker("few", d.call, { volumeThreshold: 10, resetTimeout: 1000 }));
    for (let i = 0; i < 9; i++) await expect(b.fire(1)).rejects.toThrow();
    expect(b.state).toBe("closed");

    const mixed = downstream();
    const m = track(createBreaker("mixed", mixed.call, { volumeThreshold: 4, errorThresholdPercentage: 50 }));
    mixed.healthy = true;
    for (let i = 0; i < 6; i++) await m.fire(1);
    mixed.healthy = false;
    for (let i = 0; i < 5; i++) await expect(m.fire(1)).rejects.toThrow();
    expect(m.state).toBe("closed"); // 5 of 11 = 45 %
    await expect(m.fire(1)).rejects.toThrow();
    expect(m.state).toBe("closed"); // 6 of 12 = 50 % is not above the threshold
    await expect(m.fire(1)).rejects.toThrow();
    expect(m.state).toBe("open"); // 7 of 13 = 54 %
  });

  it("has no timeout by default (gRPC deadlines bound calls) but applies one when asked", async () => {
    const slow = async () => {
      await sleep(40);
      return "done";
    };
    await expect(track(createBreaker("no-timeout", slow)).fire()).resolves.toBe("done");
    await expect(track(createBreaker("timeout", slow, { timeout: 10 })).fire()).rejects.toThrow(/Timed out/);
  });

  it("rejects every call after shutdown", async () => {
    const d = downstream();
    d.healthy = true;
    const b = createBreaker("gone", d.call);
    b.shutdown();
    await expect(b.fire(1)).rejects.toThrow();
    expect(d.calls).toBe(0);
  });
});
