import { context, SpanStatusCode, trace } from "@opentelemetry/api";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { beforeEach, describe, expect, it } from "vitest";
import {
  currentTraceId,
  extractContext,
  extractFromNatsHeaders,
  initTracing,
  injectContext,
  injectIntoNatsHeaders,
  SpanKind,
  withSpan,
} from "./tracing.js";

const exporter = new InMemorySpanExporter();
const tracing = initTracing({ service: "mesh-test", exporter });

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

beforeEach(() => exporter.reset());

describe("initTracing", () => {
  it("is idempotent: a second call returns the same provider", () => {
    expect(initTracing({ service: "other" })).toBe(tracing);
  });
});

describe("withSpan", () => {
  it("nests child spans under the active parent and exposes the trace id", async () => {
    let outerTrace: string | undefined;
    await withSpan(
      "outer",
      { kind: SpanKind.SERVER, attributes: { "rpc.method": "/x.v1.S/M" } },
      async () => {
        outerTrace = currentTraceId();
        await withSpan("inner", {}, async () => {
          await new Promise((r) => setTimeout(r, 1));
          expect(currentTraceId()).toBe(outerTrace);
        });
      },
    );
    const [inner, outer] = exporter.getFinishedSpans();
    expect(outer?.name).toBe("outer");
    expect(inner?.name).toBe("inner");
    expect(outerTrace).toMatch(/^[0-9a-f]{32}$/);
    expect(inner?.spanContext().traceId).toBe(outer?.spanContext().traceId);
    expect(inner?.parentSpanContext?.spanId).toBe(outer?.spanContext().spanId);
    expect(outer?.kind).toBe(SpanKind.SERVER);
    expect(outer?.attributes["rpc.method"]).toBe("/x.v1.S/M");
    expect(outer?.attributes["service.name"]).toBe("mesh-test");
    expect(outer?.status.code).toBe(SpanStatusCode.UNSET);
    expect(currentTraceId()).toBeUndefined();
  });

  it("records a thrown error as exception and ERROR status, and rethrows it", async () => {
    await expect(
      withSpan("fails", {}, () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    const [span] = exporter.getFinishedSpans();
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: "boom" });
    expect(span?.events.map((e) => e.name)).toEqual(["exception"]);
    expect(span?.ended).toBe(true);
  });

  it("leaves expected errors out of the error status when told to", async () => {
    await expect(
      withSpan("nf", { recordError: () => false }, () => Promise.reject(new Error("nf"))),
    ).rejects.toThrow();
    expect(exporter.getFinishedSpans()[0]?.status.code).toBe(SpanStatusCode.UNSET);
  });
});

describe("propagation", () => {
  it("round-trips W3C trace context through injected headers", async () => {
    const headers = await withSpan("client", { kind: SpanKind.CLIENT }, () => injectContext());
    const client = exporter.getFinishedSpans()[0];
    const [, traceId, spanId] = TRACEPARENT.exec(headers.traceparent ?? "") ?? [];
    expect(traceId).toBe(client?.spanContext().traceId);
    expect(spanId).toBe(client?.spanContext().spanId);

    // Server side: headers may arrive capitalised or as arrays; the span continues the same trace.
    const parent = extractContext({ Traceparent: [headers.traceparent ?? ""] });
    await withSpan("server", { kind: SpanKind.SERVER, parent }, () => undefined);
    const server = exporter.getFinishedSpans()[1];
    expect(server?.spanContext().traceId).toBe(traceId);
    expect(server?.parentSpanContext?.spanId).toBe(spanId);
  });

  it("injects nothing outside a span and extracts nothing from garbage", () => {
    expect(injectContext()).toEqual({});
    const ctx = extractContext({ traceparent: "not-a-traceparent" });
    expect(trace.getSpanContext(ctx)).toBeUndefined();
  });

  it("does not parent a new server request under the process's active span by default", async () => {
    await withSpan("unrelated", {}, () => {
      expect(trace.getSpanContext(extractContext({}))).toBeUndefined();
      expect(trace.getSpanContext(context.active())).toBeDefined();
    });
  });

  it("carries trace context through NATS-style headers", async () => {
    const store = new Map<string, string>();
    const h = { set: (k: string, v: string) => void store.set(k, v), get: (k: string) => store.get(k) ?? "" };
    const traceId = await withSpan("publish", { kind: SpanKind.PRODUCER }, () => {
      injectIntoNatsHeaders(h);
      return currentTraceId();
    });
    expect(store.get("traceparent")).toMatch(TRACEPARENT);
    const parent = extractFromNatsHeaders(h);
    expect(trace.getSpanContext(parent)?.traceId).toBe(traceId);
    expect(trace.getSpanContext(parent)?.isRemote).toBe(true);
    expect(trace.getSpanContext(extractFromNatsHeaders({ get: () => "" }))).toBeUndefined();
  });
});
