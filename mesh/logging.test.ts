import { describe, expect, it } from "vitest";
import { runWithContext } from "./context.js";
import { createLogger, isSecretKey, REDACTED, redactSecrets } from "./logging.js";
import { initTracing, withSpan } from "./tracing.js";

initTracing({ service: "logging-test" });

function capture(level: "debug" | "info" = "info", version?: string) {
  const lines: Record<string, unknown>[] = [];
  const destination = { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) };
  const logger = createLogger({ service: "svc", level, destination, ...(version ? { version } : {}) });
  return { logger, lines };
}

describe("createLogger", () => {
  it("writes one JSON line with service, version, level name and ISO time", () => {
    const { logger, lines } = capture("info", "1.2.3");
    logger.info({ n: 1 }, "hello");
    logger.debug("dropped below level");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ service: "svc", version: "1.2.3", level: "info", msg: "hello", n: 1 });
    expect(String(lines[0]?.time)).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(lines[0]).not.toHaveProperty("trace_id");
  });

  it("adds trace and span ids of the active span and the request context ids", async () => {
    const { logger, lines } = capture();
    let ids: { traceId: string; spanId: string } | undefined;
    await runWithContext({ requestId: "req-1", correlationId: "corr-1" }, () =>
      withSpan("op", {}, async (span) => {
        ids = span.spanContext();
        await Promise.resolve();
        logger.child({ component: "x" }).info("inside");
      }),
    );
    expect(lines[0]).toMatchObject({
      msg: "inside",
      component: "x",
      trace_id: ids?.traceId,
      span_id: ids?.spanId,
      request_id: "req-1",
      correlation_id: "corr-1",
    });
  });

  it("redacts secret-looking keys at any reasonable depth, in bindings and errors too", () => {
    const { logger, lines } = capture();
    logger.child({ apiKey: "k-123" }).info(
      {
        password: "p1",
        user: { name: "ann", dbPassword: "p2", profile: { clientSecret: "p3" } },
        headers: { Authorization: "Bearer t1", "x-api-key": "k2", accept: "json" },
        infoRequest: { values: { AWS_KEY: "a1" }, answer: "forty-two" },
        items: [{ token: "t2" }, { ok: true }],
        run: { fencing_token: 7, next_page_token: "abc" },
      },
      "request",
    );
    const err = Object.assign(new Error("failed"), { authorization: "Bearer t3", code: 14 });
    logger.error({ err }, "call failed");
    logger
      .child({ a: 1 })
      .child({ session: { refresh_token: "t4" } })
      .warn("grandchild");
    const text = JSON.stringify(lines);
    for (const leaked of ["k-123", "p1", "p2", "p3", "t1", "k2", "a1", "forty-two", "t2", "t3", "t4"]) {
      expect(text).not.toContain(`"${leaked}`);
    }
    expect(lines[0]).toMatchObject({
      apiKey: REDACTED,
      password: REDACTED,
      user: { name: "ann", dbPassword: REDACTED, profile: { clientSecret: REDACTED } },
      headers: { Authorization: REDACTED, "x-api-key": REDACTED, accept: "json" },
      infoRequest: { values: REDACTED, answer: REDACTED },
      items: [{ token: REDACTED }, { ok: true }],
      run: { fencing_token: 7, next_page_token: "abc" },
    });
    expect(lines[1]).toMatchObject({ err: { message: "failed", code: 14, authorization: REDACTED } });
    expect(lines[2]).toMatchObject({ a: 1, session: { refresh_token: REDACTED }, msg: "grandchild" });
  });
});

describe("redactSecrets", () => {
  it("does not mutate its input and shares untouched branches", () => {
    const clean = { a: { b: 1 } };
    const input = { clean, secret: "s" };
    const out = redactSecrets(input);
    expect(input.secret).toBe("s");
    expect(out.secret).toBe(REDACTED);
    expect(out.clean).toBe(clean);
    expect(redactSecrets(clean)).toBe(clean);
  });

  it("stops at a bounded depth so cyclic or huge objects cannot hang logging", () => {
    type Node = { next?: Node; password?: string };
    const cyclic: Node = { password: "x" };
    cyclic.next = cyclic;
    const out = redactSecrets(cyclic);
    expect(out.password).toBe(REDACTED);
    expect(out.next?.password).toBe(REDACTED);
  });

  it("classifies keys by name", () => {
    for (const k of ["password", "client_secret", "webhookSecret", "refreshToken", "api_key", "Set-Cookie"])
      expect(isSecretKey(k), k).toBe(true);
    for (const k of ["name", "tokens_used", "secretary", "fencing_token", "pageToken", "value"])
      expect(isSecretKey(k), k).toBe(false);
  });
});
