/**
 * Structured JSON logs (pino) that can be joined with traces and requests.
 *
 * Why these choices: one JSON object per line is what every log pipeline ingests; pino is the
 * fastest Node logger and writes synchronously-safe to stdout. Each line carries `trace_id` /
 * `span_id` of the active span and `request_id` / `correlation_id` of the request context through
 * a mixin, so no call site has to remember them. Secrets are scrubbed by key name at any depth
 * (bounded) because the product moves credentials around (info-request answers, API keys, tokens)
 * and a single careless `logger.info({ req })` must not leak them.
 */
import { context, trace } from "@opentelemetry/api";
import { type DestinationStream, type LevelWithSilent, pino, stdSerializers } from "pino";
import { currentContext } from "./context.js";

export type Logger = pino.Logger;

export const REDACTED = "[REDACTED]";

/** Key names (after camelCase → snake_case) whose values are secrets, alone or as a suffix. */
const SECRET_KEY =
  /(^|_)(password|passwd|pwd|secret|token|api_key|apikey|private_key|credentials?|authorization|cookie|set_cookie|session_id)$/;
/** Keys that carry user-provided secret payloads in this product (info-request answers). */
const SECRET_EXACT = new Set(["values", "answer", "answers", "x_api_key", "proxy_authorization"]);
/** Opaque but harmless values whose names end in "token": redacting them would only hurt debugging. */
const NOT_SECRET = new Set(["fencing_token", "page_token", "next_page_token", "continuation_token"]);
const MAX_DEPTH = 8;

function normalise(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/[-.\s]/g, "_")
    .toLowerCase();
}

/** Whether a property name denotes a secret; exported so other sinks (audit, events) agree. */
export function isSecretKey(key: string): boolean {
  const k = normalise(key);
  if (NOT_SECRET.has(k)) return false;
  return SECRET_EXACT.has(k) || SECRET_KEY.test(k);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * A copy of `value` with secret-named properties replaced by "[REDACTED]", walking plain objects
 * and arrays up to a fixed depth. Untouched branches are shared, not copied, to keep logging cheap.
 * Class instances (Dates, Buffers, protobuf messages) are left to their own serialisation.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((item) => {
      const r = redactSecrets(item, depth + 1);
      if (r !== item) changed = true;
      return r;
    });
    return (changed ? out : value) as T;
  }
  if (!isPlainObject(value)) return value;
  let copy: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const r = isSecretKey(k) && v !== undefined && v !== null ? REDACTED : redactSecrets(v, depth + 1);
    if (r !== v) {
      copy ??= { ...value };
      copy[k] = r;
    }
  }
  return (copy ?? value) as T;
}

/** Options for {@link createLogger}; `destination` lets tests capture lines (default: pino's synchronous stdout). */
export interface LoggerOptions {
  service: string;
  level: LevelWithSilent;
  version?: string;
  destination?: DestinationStream;
}

/** Ids joining this line to its trace and request; only those present are added. */
function correlationFields(): Record<string, string> {
  const out: Record<string, string> = {};
  const sc = trace.getSpan(context.active())?.spanContext();
  if (sc && trace.isSpanContextValid(sc)) {
    out.trace_id = sc.traceId;
    out.span_id = sc.spanId;
  }
  const rc = currentContext();
  if (rc) {
    out.request_id = rc.requestId;
    out.correlation_id = rc.correlationId;
  }
  return out;
}

/**
 * The service's root logger. Levels are written as names ("info"), times as ISO-8601, and every
 * line carries `service` (and `version` when given) so mixed streams stay attributable.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const base: Record<string, string> = { service: opts.service };
  if (opts.version !== undefined) base.version = opts.version;
  const logger = pino(
    {
      level: opts.level,
      base,
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin: correlationFields,
      formatters: {
        level: (label) => ({ level: label }),
        bindings: (bindings) => redactSecrets(bindings),
        log: (obj) => redactSecrets(obj),
      },
      // The standard serialiser returns a non-plain object; spread it so its own fields get scrubbed.
      serializers: { err: (err: Error) => redactSecrets({ ...stdSerializers.err(err) }) },
    },
    opts.destination,
  );
  // pino applies `formatters.bindings` only to the root, so scrub child bindings on the way in.
  // Children inherit from their parent's prototype chain, so grandchildren get this too.
  const child = logger.child;
  logger.child = function scrubbedChild(this: Logger, bindings, options) {
    return child.call(this, redactSecrets(bindings), options);
  } as typeof logger.child;
  return logger;
}
