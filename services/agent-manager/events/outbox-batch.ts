/**
 * Stages many envelopes in the outbox with one statement.
 *
 * Why not mesh's stageEvent per event: a group commit carries hundreds of events, and one
 * INSERT per event would cost a round trip each. This writes the same rows (same table, same
 * subject scheme, same headers, envelope id as Nats-Msg-Id) with one multi-row INSERT inside
 * the caller's transaction, so the outbox guarantee is unchanged: an event is published if and
 * only if its state change committed. The caller marks the transaction with `outboxStaged`, so
 * the relay is woken at COMMIT. The payloads travel as one
 * binary parameter cut by offsets in SQL: a bytea[] parameter would be hex-encoded as text.
 */
import type pg from "pg";
import type { EventEnvelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import { EnvelopeHeaders, encodeEnvelope } from "../../../mesh/events/envelope.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";

function shortName(typeName: string): string {
  return typeName.slice(typeName.lastIndexOf(".") + 1);
}

/** The statement staging `envelopes` (undefined when there are none), to send when it suits. */
export function outboxStatement(
  subjects: Subjects,
  envelopes: readonly EventEnvelope[],
): pg.QueryConfig | undefined {
  if (envelopes.length === 0) return undefined;
  const ids: string[] = [];
  const subs: string[] = [];
  const payloads: Uint8Array[] = [];
  const offsets: number[] = [];
  const lengths: number[] = [];
  let size = 0;
  const headers: string[] = [];
  for (const env of envelopes) {
    const h: Record<string, string> = { [EnvelopeHeaders.eventType]: env.type };
    if (env.correlationId !== "") h[EnvelopeHeaders.correlationId] = env.correlationId;
    if (env.trace?.traceparent) h[EnvelopeHeaders.traceparent] = env.trace.traceparent;
    if (env.trace?.tracestate) h[EnvelopeHeaders.tracestate] = env.trace.tracestate;
    const bytes = encodeEnvelope(env);
    ids.push(env.id);
    subs.push(subjects.event(env.aggregateType, shortName(env.type)));
    payloads.push(bytes);
    offsets.push(size + 1);
    lengths.push(bytes.byteLength);
    size += bytes.byteLength;
    headers.push(JSON.stringify(h));
  }
  return {
    text: `INSERT INTO outbox (id, subject, payload, headers)
       SELECT u.id, u.subject, substring($5::bytea FROM u.off FOR u.len), u.headers
       FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[], $6::jsonb[]) AS u(id, subject, off, len, headers)`,
    values: [ids, subs, offsets, lengths, Buffer.concat(payloads, size), headers],
  };
}
