import { describe, expect, it } from "vitest";
import { createRequestContext, currentContext, remainingMs, runWithContext } from "./context.js";

describe("request context", () => {
  it("is undefined outside a request and follows awaits and timers inside one", async () => {
    expect(currentContext()).toBeUndefined();
    const ctx = createRequestContext({ correlationId: "corr" });
    await runWithContext(ctx, async () => {
      await new Promise((r) => setTimeout(r, 1));
      expect(currentContext()).toBe(ctx);
      await new Promise<void>((r) =>
        setImmediate(() => {
          expect(currentContext()?.correlationId).toBe("corr");
          r();
        }),
      );
    });
    expect(currentContext()).toBeUndefined();
  });

  it("keeps concurrent requests apart", async () => {
    const seen = await Promise.all(
      ["a", "b", "c"].map((id, i) =>
        runWithContext({ requestId: id, correlationId: id }, async () => {
          await new Promise((r) => setTimeout(r, 10 - i * 3));
          return currentContext()?.requestId;
        }),
      ),
    );
    expect(seen).toEqual(["a", "b", "c"]);
  });

  it("lets a nested scope replace the context only for its own duration", () => {
    runWithContext({ requestId: "outer", correlationId: "c" }, () => {
      runWithContext({ requestId: "inner", correlationId: "c" }, () => {
        expect(currentContext()?.requestId).toBe("inner");
      });
      expect(currentContext()?.requestId).toBe("outer");
    });
  });

  it("creates ids, starting a correlation when none is given", () => {
    const a = createRequestContext();
    expect(a.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.correlationId).toBe(a.requestId);
    expect(a).not.toHaveProperty("principal");
    const b = createRequestContext({
      correlationId: "saga-1",
      principal: { type: "agent", id: "ag-1" },
      deadline: 5,
    });
    expect(b.correlationId).toBe("saga-1");
    expect(b.requestId).not.toBe(a.requestId);
    expect(b.principal).toEqual({ type: "agent", id: "ag-1" });
  });

  it("computes the time left before the deadline, never negative", () => {
    expect(remainingMs(undefined)).toBeUndefined();
    expect(remainingMs({ requestId: "r", correlationId: "c" })).toBeUndefined();
    expect(remainingMs({ requestId: "r", correlationId: "c", deadline: 1_500 }, 1_000)).toBe(500);
    expect(remainingMs({ requestId: "r", correlationId: "c", deadline: 1_000 }, 2_000)).toBe(0);
    runWithContext({ requestId: "r", correlationId: "c", deadline: Date.now() + 60_000 }, () => {
      expect(remainingMs()).toBeGreaterThan(59_000);
    });
  });
});
