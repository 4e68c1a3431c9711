/**
 * Distributed tracing on the OpenTelemetry API with the SDK's base tracer and no exporter.
 *
 * Why no exporter by default: the collector (Jaeger, Tempo, an OTLP endpoint) is a deployment
 * decision and cannot run here. What every environment needs is that trace ids exist, propagate
 * as W3C `traceparent` through gRPC metadata and NATS headers, and appear on every log line, so a
 * request can be followed across services by grepping one id. Exporters plug in later through
 * `initTracing({ exporter })` without touching call sites, which only use `@opentelemetry/api`.
 */
import {
  type Attributes,
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  type ReadableSpan,
  type Span as SdkSpan,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";

export { SpanKind };

/**
 * Fans spans out to processors added after registration, and stamps `service.name` on each span
 * (a resource attribute would need @opentelemetry/resources, which is not a direct dependency).
 */
class FanOutProcessor implements SpanProcessor {
  readonly processors: SpanProcessor[] = [];
  constructor(private readonly service: string) {}
  onStart(span: SdkSpan, parent: Context): void {
    span.setAttribute("service.name", this.service);
    for (const p of this.processors) p.onStart(span, parent);
  }
  onEnd(span: ReadableSpan): void {
    for (const p of this.processors) p.onEnd(span);
  }
  async forceFlush(): Promise<void> {
    await Promise.all(this.processors.map((p) => p.forceFlush()));
  }
  async shutdown(): Promise<void> {
    await Promise.all(this.processors.map((p) => p.shutdown()));
  }
}

/** The registered provider; `shutdown()` flushes exporters and belongs at the end of the lifecycle. */
export interface Tracing {
  readonly service: string;
  readonly provider: BasicTracerProvider;
  shutdown(): Promise<void>;
}

let registered: (Tracing & { fanOut: FanOutProcessor }) | undefined;

/**
 * Registers the global tracer provider, context manager (AsyncLocalStorage, so the active span
 * follows awaits) and W3C propagator. Idempotent: the first call wins and later calls return the
 * same handle, only attaching their `exporter` (tests use an InMemorySpanExporter this way).
 */
export function initTracing(opts: { service: string; exporter?: SpanExporter }): Tracing {
  if (!registered) {
    const fanOut = new FanOutProcessor(opts.service);
    const provider = new BasicTracerProvider({ spanProcessors: [fanOut] });
    const contextManager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(contextManager);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    registered = { service: opts.service, provider, fanOut, shutdown: () => provider.shutdown() };
  }
  if (opts.exporter) registered.fanOut.processors.push(new SimpleSpanProcessor(opts.exporter));
  return registered;
}

/** A tracer named after the instrumenting service or library. */
export function tracer(service: string = registered?.service ?? "codex"): Tracer {
  return trace.getTracer(service);
}

type Carrier = Record<string, string | string[] | undefined>;

/** Header lookup tolerant of case (HTTP/1 proxies may capitalise; gRPC metadata is lower-case). */
const carrierGetter: TextMapGetter<Carrier> = {
  keys: (c) => Object.keys(c),
  get(c, key) {
    if (key in c) return c[key];
    const lower = key.toLowerCase();
    for (const k of Object.keys(c)) if (k.toLowerCase() === lower) return c[k];
    return undefined;
  },
};

/**
 * The remote parent carried by inbound headers/metadata. Starts from ROOT_CONTEXT by default so
 * a server never parents a new request under whatever happened to be active in the process.
 */
export function extractContext(carrier: Carrier, base: Context = ROOT_CONTEXT): Context {
  return propagation.extract(base, carrier, carrierGetter);
}

/** `traceparent` (and `tracestate`) for outgoing metadata; empty when no span is active. */
export function injectContext(ctx: Context = context.active()): Record<string, string> {
  const out: Record<string, string> = {};
  propagation.inject(ctx, out);
  return out;
}

/** Options for {@link withSpan}. `recordError` lets callers keep expected errors out of error rates. */
export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** Parent context (e.g. from `extractContext`); defaults to the active context. */
  parent?: Context;
  /** Whether a thrown error marks the span as ERROR; default: every error does. */
  recordError?: (err: unknown) => boolean;
}

/**
 * Runs `fn` inside a new active span, so logs, child spans and outgoing calls made by `fn` carry
 * its ids. A thrown error is recorded as an exception event and ERROR status, then rethrown.
 * Success leaves the status UNSET, as OpenTelemetry recommends for instrumentation.
 */
export async function withSpan<T>(
  name: string,
  opts: SpanOptions,
  fn: (span: Span) => Promise<T> | T,
): Promise<T> {
  const parent = opts.parent ?? context.active();
  const spanOpts = {
    kind: opts.kind ?? SpanKind.INTERNAL,
    ...(opts.attributes ? { attributes: opts.attributes } : {}),
  };
  const span = tracer().startSpan(name, spanOpts, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    if (opts.recordError?.(err) ?? true) {
      const e = err instanceof Error ? err : new Error(String(err));
      span.recordException(e);
      span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
    }
    throw err;
  } finally {
    span.end();
  }
}

/** The active trace id, or undefined outside any (valid) span. */
export function currentTraceId(): string | undefined {
  const sc = trace.getSpan(context.active())?.spanContext();
  return sc && trace.isSpanContextValid(sc) ? sc.traceId : undefined;
}

/** The parts of a NATS `MsgHdrs` the propagator needs (kept structural: no nats import here). */
export interface NatsHeadersWriter {
  set(key: string, value: string): void;
}
export interface NatsHeadersReader {
  get(key: string): string;
}

/** Writes the trace context into NATS message headers (publisher side, e.g. the outbox relay). */
export function injectIntoNatsHeaders(h: NatsHeadersWriter, ctx: Context = context.active()): void {
  for (const [k, v] of Object.entries(injectContext(ctx))) h.set(k, v);
}

/** Reads the trace context of a consumed NATS message; NATS returns "" for missing headers. */
export function extractFromNatsHeaders(h: NatsHeadersReader, base: Context = ROOT_CONTEXT): Context {
  return propagation.extract(base, h, {
    keys: () => ["traceparent", "tracestate"],
    get: (carrier, key) => carrier.get(key) || undefined,
  });
}
