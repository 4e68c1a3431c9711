import { create, createRegistry, equals, toBinary } from "@bufbuild/protobuf";
import { DurationSchema, StringValueSchema, timestampDate } from "@bufbuild/protobuf/wkt";
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { afterAll, describe, expect, it } from "vitest";
import { ActorType, EventEnvelopeSchema } from "../../gen/codex/events/v1/envelope_pb.js";
import {
  contextFromEnvelope,
  decodeEnvelope,
  encodeEnvelope,
  newEnvelope,
  unpackPayload,
} from "./envelope.js";

const actor = { type: ActorType.USER, id: "user-1", displayName: "Ada" };

function sample(correlationId = "req-1") {
  return newEnvelope({
    schema: StringValueSchema,
    payload: create(StringValueSchema, { value: "hello" }),
    aggregateType: "widget",
    aggregateId: "w-1",
    aggregateVersion: 3,
    projectId: "p-1",
    actor,
    correlationId,
    causationId: "evt-0",
    source: "widgets",
  });
}

afterAll(() => {
  propagation.disable();
  context.disable();
});

describe("envelope", () => {
  it("fills id, type, time and metadata, and round-trips through bytes with an Any payload", () => {
    const before = Date.now();
    const env = sample();
    expect(env.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(sample().id).not.toBe(env.id);
    expect(env.type).toBe("google.protobuf.StringValue");
    expect(env.aggregateVersion).toBe(3n);
    expect(env.actor?.displayName).toBe("Ada");
    expect(env.payload?.typeUrl).toBe("type.googleapis.com/google.protobuf.StringValue");
    expect(timestampDate(env.occurredAt!).getTime()).toBeGreaterThanOrEqual(before - 1);

    const decoded = decodeEnvelope(encodeEnvelope(env));
    expect(equals(EventEnvelopeSchema, decoded, env)).toBe(true);
    expect(unpackPayload(decoded, StringValueSchema)?.value).toBe("hello");
    expect(unpackPayload(decoded, DurationSchema)).toBeUndefined();
    const viaRegistry = unpackPayload(decoded, createRegistry(StringValueSchema));
    expect(viaRegistry?.$typeName).toBe("google.protobuf.StringValue");
    expect(unpackPayload(decoded, createRegistry(DurationSchema))).toBeUndefined();
  });

  it("refuses envelopes without aggregate id or source, and bytes that are not an envelope", () => {
    expect(() =>
      newEnvelope({
        schema: StringValueSchema,
        payload: create(StringValueSchema),
        aggregateType: "w",
        aggregateId: "",
        actor,
        source: "s",
      }),
    ).toThrow(/aggregateId/);
    expect(() => decodeEnvelope(new Uint8Array([0xff, 0xff, 0xff]))).toThrow();
  });

  it("leaves the trace empty without a propagator and carries W3C trace context with one", () => {
    expect(sample().trace?.traceparent).toBe("");

    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const spanContext = {
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      traceFlags: 1,
    };
    const env = context.with(trace.setSpanContext(context.active(), spanContext), () => sample());
    expect(env.trace?.traceparent).toBe("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");

    const restored = trace.getSpanContext(contextFromEnvelope(decodeEnvelope(encodeEnvelope(env))));
    expect(restored?.traceId).toBe(spanContext.traceId);
    expect(restored?.spanId).toBe(spanContext.spanId);
    expect(restored?.isRemote).toBe(true);
  });

  it("writes the same bytes as toBinary, field for field, for every mix of set and default fields", () => {
    // A small seeded generator: each field empty/zero or set, strings with multi-byte characters,
    // versions and times up to the 64-bit limits, so every branch of the hand-written encoder runs.
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const text = () =>
      rand() < 0.3 ? "" : ["a", "run-1", "ünïcødé ✓", "x".repeat(300)][Math.floor(rand() * 4)]!;
    const big = () => (rand() < 0.3 ? 0n : [1n, 127n, 128n, 2n ** 63n - 1n][Math.floor(rand() * 4)]!);
    for (let i = 0; i < 500; i++) {
      const env = create(EventEnvelopeSchema, {
        id: text(),
        type: text(),
        aggregateType: text(),
        aggregateId: text(),
        aggregateVersion: big(),
        projectId: text(),
        ...(rand() < 0.8
          ? { occurredAt: { seconds: rand() < 0.5 ? -big() : big(), nanos: rand() < 0.3 ? 0 : 999_999_999 } }
          : {}),
        ...(rand() < 0.8
          ? { actor: { type: rand() < 0.3 ? 0 : ActorType.AGENT, id: text(), displayName: text() } }
          : {}),
        correlationId: text(),
        causationId: text(),
        ...(rand() < 0.8 ? { trace: { traceparent: text(), tracestate: text() } } : {}),
        ...(rand() < 0.8
          ? {
              payload: {
                typeUrl: text(),
                value: new Uint8Array(rand() < 0.3 ? 0 : 1 + Math.floor(rand() * 200)).fill(7),
              },
            }
          : {}),
        source: text(),
      });
      expect(Buffer.from(encodeEnvelope(env)).equals(Buffer.from(toBinary(EventEnvelopeSchema, env)))).toBe(
        true,
      );
    }
  });

  it("keeps fields it does not know (from a newer producer) when re-encoding a decoded envelope", () => {
    const bytes = encodeEnvelope(sample());
    // Field 99 (tag varint 0x9a 0x06), a string: what a newer schema could add.
    const withUnknown = new Uint8Array([...bytes, 0x9a, 0x06, 3, 0x6e, 0x65, 0x77]);
    const decoded = decodeEnvelope(withUnknown);
    expect(decoded.$unknown).toHaveLength(1);
    expect(Buffer.from(encodeEnvelope(decoded)).equals(Buffer.from(withUnknown))).toBe(true);
  });
});
