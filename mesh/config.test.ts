import { describe, expect, expectTypeOf, it } from "vitest";
import {
  bool,
  ConfigError,
  type ConfigOf,
  type ConfigSpec,
  commonConfigSpec,
  durationMs,
  int,
  list,
  loadConfig,
  oneOf,
  optional,
  parseDurationMs,
  port,
  str,
  url,
} from "./config.js";

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => `${p.variable}: ${p.reason}`);
  }
  throw new Error("expected a ConfigError");
}

const spec = {
  PORT: port({ default: 50051 }),
  DATABASE_URL: url({ default: "postgres://root@127.0.0.1:5432/test" }),
  LOG_LEVEL: oneOf(["debug", "info", "warn", "error"] as const, { default: "info" }),
  GRACE_MS: int({ min: 0, default: 10000 }),
  NATS_SUBJECT_PREFIX: str({ default: "codex", pattern: /^[a-z][a-z0-9_]*$/ }),
  SECRET: str({ secret: true }),
  FLAG: bool({ default: false }),
  LIST: list({ default: [] }),
  DUR: durationMs({ default: "30s" }),
};

describe("loadConfig", () => {
  it("applies defaults and infers types from the spec", () => {
    const cfg = loadConfig(spec, { SECRET: "s3cr3t" });
    expect(cfg).toEqual({
      PORT: 50051,
      DATABASE_URL: "postgres://root@127.0.0.1:5432/test",
      LOG_LEVEL: "info",
      GRACE_MS: 10000,
      NATS_SUBJECT_PREFIX: "codex",
      SECRET: "s3cr3t",
      FLAG: false,
      LIST: [],
      DUR: 30000,
    });
    expectTypeOf(cfg.PORT).toEqualTypeOf<number>();
    expectTypeOf(cfg.LOG_LEVEL).toEqualTypeOf<"debug" | "info" | "warn" | "error">();
    expectTypeOf(cfg.FLAG).toEqualTypeOf<boolean>();
    expectTypeOf(cfg.LIST).toEqualTypeOf<readonly string[]>();
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  it("parses every kind of value from the environment", () => {
    const cfg = loadConfig(spec, {
      PORT: "8080",
      DATABASE_URL: "postgres://u:p@db:5432/x",
      LOG_LEVEL: "debug",
      GRACE_MS: "0",
      NATS_SUBJECT_PREFIX: "codex_test1",
      SECRET: "x",
      FLAG: "YES",
      LIST: " a, b ,,c ",
      DUR: "1m30s",
    });
    expect(cfg.PORT).toBe(8080);
    expect(cfg.GRACE_MS).toBe(0);
    expect(cfg.FLAG).toBe(true);
    expect(cfg.LIST).toEqual(["a", "b", "c"]);
    expect(cfg.DUR).toBe(90_000);
  });

  it("treats empty variables as unset", () => {
    expect(loadConfig({ P: port({ default: 7 }) }, { P: "" }).P).toBe(7);
    expect(problemsOf(() => loadConfig({ K: str() }, { K: "" }))).toEqual(["K: is required but not set"]);
  });

  it("collects every problem into one error naming each variable", () => {
    const problems = problemsOf(() =>
      loadConfig(spec, {
        PORT: "abc",
        DATABASE_URL: "not a url",
        LOG_LEVEL: "verbose",
        GRACE_MS: "-1",
        NATS_SUBJECT_PREFIX: "Bad-Prefix",
        FLAG: "maybe",
        DUR: "soon",
      }),
    );
    expect(problems).toEqual([
      "PORT: must be an integer 1-65535, got 'abc'",
      "DATABASE_URL: must be an absolute URL, got 'not a url'",
      "LOG_LEVEL: must be one of debug|info|warn|error, got 'verbose'",
      "GRACE_MS: must be an integer >= 0, got '-1'",
      "NATS_SUBJECT_PREFIX: must match /^[a-z][a-z0-9_]*$/, got 'Bad-Prefix'",
      "SECRET: is required but not set",
      "FLAG: must be true|false|1|0|yes|no|on|off, got 'maybe'",
      "DUR: must be a duration like 250ms, 30s, 5m, 1h or milliseconds, got 'soon'",
    ]);
    expect(() => loadConfig(spec, { PORT: "abc" })).toThrow(
      "invalid configuration:\n  PORT: must be an integer 1-65535, got 'abc'\n  SECRET: is required but not set",
    );
  });

  it("never echoes secret values, nor URL credentials", () => {
    const problems = problemsOf(() =>
      loadConfig(
        {
          SECRET: str({ secret: true, minLength: 32 }),
          DB: url({ protocols: ["postgres"] }),
        },
        { SECRET: "hunter2-short", DB: "mysql://admin:pa55word@db/x" },
      ),
    );
    expect(problems).toEqual([
      "SECRET: must be at least 32 characters, got <redacted>",
      "DB: must use one of the schemes postgres, got 'mysql://***@db/x'",
    ]);
    expect(problems.join()).not.toContain("hunter2");
    expect(problems.join()).not.toContain("pa55word");
  });

  it("rejects integers with garbage that parseInt would accept", () => {
    for (const bad of ["1.5", "1e3", "12abc", "0x10", " "]) {
      expect(problemsOf(() => loadConfig({ N: int() }, { N: bad })).length, bad).toBe(1);
    }
    expect(loadConfig({ N: int({ max: 5 }) }, { N: "+5" }).N).toBe(5);
    expect(problemsOf(() => loadConfig({ N: int({ max: 5 }) }, { N: "6" }))).toEqual([
      "N: must be an integer <= 5, got '6'",
    ]);
  });

  it("checks port ranges, allowing 0 only where it means disabled", () => {
    expect(problemsOf(() => loadConfig({ P: port() }, { P: "0" }))).toEqual([
      "P: must be an integer 1-65535, got '0'",
    ]);
    expect(problemsOf(() => loadConfig({ P: port() }, { P: "65536" })).length).toBe(1);
    expect(loadConfig({ P: port({ allowZero: true }) }, { P: "0" }).P).toBe(0);
  });

  it("constrains list items when asked", () => {
    const f = { L: list({ item: /^[a-z]+$/, separator: ";" }) };
    expect(loadConfig(f, { L: "a;b" }).L).toEqual(["a", "b"]);
    expect(problemsOf(() => loadConfig(f, { L: "a;B1" }))).toEqual([
      "L: every item must match /^[a-z]+$/, got 'a;B1'",
    ]);
  });

  it("makes fields optional on request", () => {
    const f = { O: optional(int()) };
    expect(loadConfig(f, {}).O).toBeUndefined();
    expect(loadConfig(f, { O: "3" }).O).toBe(3);
    expectTypeOf(loadConfig(f, {}).O).toEqualTypeOf<number | undefined>();
  });

  it("cuts very long values in messages", () => {
    const [problem] = problemsOf(() => loadConfig({ B: bool() }, { B: "x".repeat(500) }));
    expect(problem?.length).toBeLessThan(150);
  });
});

describe("durations", () => {
  it("parses units, compounds and bare milliseconds", () => {
    expect(parseDurationMs("250ms")).toBe(250);
    expect(parseDurationMs("30s")).toBe(30_000);
    expect(parseDurationMs("1.5s")).toBe(1500);
    expect(parseDurationMs("5m")).toBe(300_000);
    expect(parseDurationMs("1h30m")).toBe(5_400_000);
    expect(parseDurationMs("1200")).toBe(1200);
    for (const bad of ["", "s", "1d", "-1s", "1 s", "1.s"]) expect(parseDurationMs(bad), bad).toBeUndefined();
  });

  it("enforces bounds and refuses an invalid default at definition time", () => {
    expect(problemsOf(() => loadConfig({ D: durationMs({ min: 100, max: 1000 }) }, { D: "2s" }))).toEqual([
      "D: must be between 100ms and 1000ms, got '2s'",
    ]);
    expect(() => durationMs({ default: "forever" })).toThrow(TypeError);
    expect(loadConfig({ D: durationMs({ default: 5 }) }, {}).D).toBe(5);
  });
});

describe("ConfigOf in generic code", () => {
  it("keeps the known fields' types when a service spec is merged into the common one", () => {
    function host<S extends ConfigSpec>(own: S, env: Record<string, string>) {
      const cfg: ConfigOf<typeof commonConfigSpec & S> = loadConfig({ ...commonConfigSpec, ...own }, env);
      const port: number = cfg.PORT;
      const level: "debug" | "info" | "warn" | "error" = cfg.LOG_LEVEL;
      return { port, level, cfg };
    }
    const { port, level, cfg } = host({ QUEUE: str({ default: "q" }) }, { PORT: "1234" });
    expect([port, level, cfg.QUEUE]).toEqual([1234, "info", "q"]);
    expectTypeOf(cfg.QUEUE).toEqualTypeOf<string>();
  });
});

describe("commonConfigSpec", () => {
  it("loads with no environment at all (local defaults)", () => {
    const cfg = loadConfig(commonConfigSpec, {});
    expect(cfg.PORT).toBe(50051);
    expect(cfg.METRICS_PORT).toBe(9464);
    expect(cfg.FORCE_MS).toBeGreaterThan(cfg.GRACE_MS);
    expect(cfg.REDIS_URL).toBe("redis://127.0.0.1:6379");
  });

  it("accepts METRICS_PORT=0 (disabled) and refuses a non-redis REDIS_URL", () => {
    expect(loadConfig(commonConfigSpec, { METRICS_PORT: "0" }).METRICS_PORT).toBe(0);
    expect(problemsOf(() => loadConfig(commonConfigSpec, { REDIS_URL: "http://x" }))).toEqual([
      "REDIS_URL: must use one of the schemes redis, rediss, got 'http://x'",
    ]);
  });
});
