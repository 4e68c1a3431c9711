/**
 * Typed configuration, parsed and checked once at start-up.
 *
 * Why: a service that starts with a bad setting fails later, far from the cause (a typo in a port
 * surfaces as EADDRINUSE, a bad URL as a hang). Each service declares a spec of fields; `loadConfig`
 * checks every variable, collects every problem and throws one `ConfigError` naming them all, so
 * one deploy round fixes all of them. Nothing else in the code base reads `process.env`.
 *
 * Unset and empty variables are treated alike (Kubernetes and shells often export `X=`).
 */

/** Type-only key carrying a field's value type (no runtime property). */
declare const valueType: unique symbol;

type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string; echo: boolean };

/** One variable's parser. Build fields with the helpers below rather than by hand. */
export interface Field<T> {
  /** Secret values are never echoed in error messages. */
  readonly secret: boolean;
  /** Returns the typed value, or a reason ("must be …") when the raw value is unusable. */
  parse(raw: string | undefined): Parsed<T>;
  /** Phantom: lets `ConfigOf` read T by indexing, which also works inside generic code. */
  readonly [valueType]: T;
}

/** A spec maps variable names to fields; the loaded config has one typed property per name. */
export type ConfigSpec = Record<string, Field<unknown>>;
/**
 * The loaded config's type. Indexed access rather than `infer`, so generic code over
 * `typeof commonConfigSpec & S` still sees the known fields' types.
 */
export type ConfigOf<S extends ConfigSpec> = { readonly [K in keyof S]: S[K][typeof valueType] };

/** Attaches the phantom type to a parser object. */
function asField<T>(f: { secret: boolean; parse(raw: string | undefined): Parsed<T> }): Field<T> {
  return f as Field<T>;
}

/** Options every field accepts. A field without `default` is required. */
export interface FieldOptions<T> {
  default?: T;
  secret?: boolean;
}

/** Every problem found, one per variable, e.g. "PORT: must be an integer 1-65535, got 'abc'". */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: readonly { variable: string; reason: string }[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.reason}`).join("\n")}`);
  }
}

type Convert<T> = (raw: string) => { value: T } | { reason: string };

function field<T>(opts: FieldOptions<T>, convert: Convert<T>): Field<T> {
  const secret = opts.secret === true;
  return asField<T>({
    secret,
    parse(raw) {
      if (raw === undefined || raw === "") {
        if (opts.default !== undefined) return { ok: true, value: opts.default };
        return { ok: false, reason: "is required but not set", echo: false };
      }
      const out = convert(raw);
      return "value" in out ? { ok: true, value: out.value } : { ok: false, reason: out.reason, echo: true };
    },
  });
}

/** Makes a field optional: unset gives `undefined` instead of an error. */
export function optional<T>(inner: Field<T>): Field<T | undefined> {
  return asField<T | undefined>({
    secret: inner.secret,
    parse: (raw) => (raw === undefined || raw === "" ? { ok: true, value: undefined } : inner.parse(raw)),
  });
}

const INTEGER = /^[+-]?\d+$/;

/** An integer within [min, max]; rejects "1.5", "1e3" and trailing garbage that parseInt would accept. */
export function int(opts: FieldOptions<number> & { min?: number; max?: number } = {}): Field<number> {
  const min = opts.min ?? Number.MIN_SAFE_INTEGER;
  const max = opts.max ?? Number.MAX_SAFE_INTEGER;
  const range =
    opts.min !== undefined && opts.max !== undefined
      ? ` ${min}-${max}`
      : opts.min !== undefined
        ? ` >= ${min}`
        : opts.max !== undefined
          ? ` <= ${max}`
          : "";
  return field(opts, (raw) => {
    const n = Number(raw.trim());
    if (!INTEGER.test(raw.trim()) || n < min || n > max) return { reason: `must be an integer${range}` };
    return { value: n };
  });
}

/** A TCP port. `allowZero` is for ports where 0 means "disabled" (e.g. METRICS_PORT). */
export function port(opts: FieldOptions<number> & { allowZero?: boolean } = {}): Field<number> {
  return int({ ...opts, min: opts.allowZero ? 0 : 1, max: 65535 });
}

/** A string, optionally constrained by a pattern and minimum length (useful for keys). */
export function str(
  opts: FieldOptions<string> & { pattern?: RegExp; minLength?: number } = {},
): Field<string> {
  return field(opts, (raw) => {
    if (opts.minLength !== undefined && raw.length < opts.minLength)
      return { reason: `must be at least ${opts.minLength} characters` };
    if (opts.pattern && !opts.pattern.test(raw)) return { reason: `must match ${opts.pattern}` };
    return { value: raw };
  });
}

/** An absolute URL, returned as given (drivers want their own scheme-specific string). */
export function url(opts: FieldOptions<string> & { protocols?: readonly string[] } = {}): Field<string> {
  return field(opts, (raw) => {
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      return { reason: "must be an absolute URL" };
    }
    const scheme = parsed.protocol.slice(0, -1);
    if (opts.protocols && !opts.protocols.includes(scheme))
      return { reason: `must use one of the schemes ${opts.protocols.join(", ")}` };
    return { value: raw };
  });
}

/** One of a fixed set of strings; the type is the union of the choices. */
export function oneOf<const C extends readonly string[]>(
  choices: C,
  opts: FieldOptions<C[number]> = {},
): Field<C[number]> {
  return field(opts, (raw) =>
    (choices as readonly string[]).includes(raw)
      ? { value: raw as C[number] }
      : { reason: `must be one of ${choices.join("|")}` },
  );
}

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);

/** true/false, 1/0, yes/no, on/off (case-insensitive). */
export function bool(opts: FieldOptions<boolean> = {}): Field<boolean> {
  return field(opts, (raw) => {
    const v = raw.trim().toLowerCase();
    if (TRUE.has(v)) return { value: true };
    if (FALSE.has(v)) return { value: false };
    return { reason: "must be true|false|1|0|yes|no|on|off" };
  });
}

/** A separated list (default ","), items trimmed, empty items dropped; `item` constrains each one. */
export function list(
  opts: FieldOptions<readonly string[]> & { separator?: string; item?: RegExp } = {},
): Field<readonly string[]> {
  return field(opts, (raw) => {
    const items = raw
      .split(opts.separator ?? ",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    const bad = opts.item ? items.filter((s) => !opts.item?.test(s)) : [];
    if (bad.length > 0) return { reason: `every item must match ${opts.item}` };
    return { value: items };
  });
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
const DURATION = /^(\d+(?:\.\d+)?(ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses "250ms", "30s", "5m", "1h", "1m30s" or a bare number of milliseconds; undefined if invalid. */
export function parseDurationMs(raw: string): number | undefined {
  const v = raw.trim();
  if (/^\d+$/.test(v)) return Number(v);
  if (!DURATION.test(v)) return undefined;
  let total = 0;
  for (const m of v.matchAll(DURATION_PART)) total += Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? Number.NaN);
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

/** A duration in milliseconds; the default may be written the same way ("30s") or as a number. */
export function durationMs(
  opts: { default?: number | string; secret?: boolean; min?: number; max?: number } = {},
): Field<number> {
  const fallback = typeof opts.default === "string" ? parseDurationMs(opts.default) : opts.default;
  if (typeof opts.default === "string" && fallback === undefined)
    throw new TypeError(`durationMs: invalid default ${JSON.stringify(opts.default)}`);
  const base: FieldOptions<number> = { secret: opts.secret === true };
  if (fallback !== undefined) base.default = fallback;
  return field(base, (raw) => {
    const ms = parseDurationMs(raw);
    if (ms === undefined) return { reason: "must be a duration like 250ms, 30s, 5m, 1h or milliseconds" };
    if ((opts.min !== undefined && ms < opts.min) || (opts.max !== undefined && ms > opts.max))
      return { reason: `must be between ${opts.min ?? 0}ms and ${opts.max ?? "∞"}ms` };
    return { value: ms };
  });
}

/** Quotes a bad value for the message, hiding URL credentials and cutting very long values. */
function echoValue(raw: string): string {
  const masked = raw.replace(/\/\/[^/@\s]*@/, "//***@");
  const cut = masked.length > 80 ? `${masked.slice(0, 77)}...` : masked;
  return `'${cut}'`;
}

/**
 * Parses `env` against `spec`. Throws `ConfigError` listing every bad variable; never returns a
 * partially valid config. The result is frozen so no code can "fix" settings at run time.
 */
export function loadConfig<S extends ConfigSpec>(
  spec: S,
  env: Readonly<Record<string, string | undefined>> = process.env,
): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  const problems: { variable: string; reason: string }[] = [];
  for (const [name, f] of Object.entries(spec)) {
    const raw = env[name];
    const r = f.parse(raw);
    if (r.ok) {
      out[name] = r.value;
      continue;
    }
    const got = !r.echo || raw === undefined ? "" : f.secret ? ", got <redacted>" : `, got ${echoValue(raw)}`;
    problems.push({ variable: name, reason: `${r.reason}${got}` });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(out) as ConfigOf<S>;
}

/**
 * What every service has. Defaults are the local development servers, so tests and `npm start`
 * need no environment; deployments set every value explicitly.
 * GRACE_MS bounds graceful draining; FORCE_MS is the hard deadline after which the process exits.
 */
export const commonConfigSpec = {
  PORT: port({ default: 50051, allowZero: true }),
  METRICS_PORT: port({ default: 9464, allowZero: true }),
  LOG_LEVEL: oneOf(["debug", "info", "warn", "error"] as const, { default: "info" }),
  GRACE_MS: int({ min: 0, default: 10_000 }),
  FORCE_MS: int({ min: 0, default: 15_000 }),
  DATABASE_URL: url({
    default: "postgres://root@127.0.0.1:5432/test",
    protocols: ["postgres", "postgresql"],
  }),
  REDIS_URL: url({ default: "redis://127.0.0.1:6379", protocols: ["redis", "rediss"] }),
  NATS_URL: url({ default: "nats://127.0.0.1:4222", protocols: ["nats", "tls"] }),
  NATS_SUBJECT_PREFIX: str({ default: "codex", pattern: /^[a-z][a-z0-9_]*$/ }),
  SERVICE_VERSION: str({ default: "dev" }),
} satisfies ConfigSpec;

export type CommonConfig = ConfigOf<typeof commonConfigSpec>;
