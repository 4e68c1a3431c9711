import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import {
  ChainBreakKind,
  ChainBreakKindSchema,
  type VerifyChainRequest,
  type VerifyChainResponseSchema,
} from "../../../gen/codex/audit/v1/audit_service_pb.js";
import {
  AuditChainBrokenSchema,
  AuditChainVerifiedSchema,
} from "../../../gen/codex/events/v1/audit_events_pb.js";
import { invalidArgument } from "../../../mesh/errors.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import { GENESIS_HASH, shortHash } from "../domain/chain.js";
import { type ChainBreak, ChainVerifier } from "../domain/verify.js";
import { type AuditUseEvent, publishAuditUse } from "../events/audit-events.js";
import { readChainHead } from "../store/append.js";
import { getRecord, scanRange } from "../store/query.js";
import { requireAdmin, requirePrincipal } from "./auth.js";
import type { AuditDeps } from "./deps.js";

/** Longest range one call verifies (the API's documented limit). */
export const MAX_VERIFY_RANGE = 1_000_000n;

type Response = MessageInitShape<typeof VerifyChainResponseSchema>;

/**
 * VerifyChain: recomputes every hash of the range, checks every link and that no sequence is
 * missing, and compares the newest record with the chain head (which catches deleting the tail).
 * A break is an answer, not an error. Every verification is itself published as an event
 * (AuditChainVerified, plus AuditChainBroken on a break), so verifications are on the record
 * and alerts can subscribe to breaks.
 */
export async function verifyChain(
  deps: AuditDeps,
  req: VerifyChainRequest,
  ctx: CallContext,
): Promise<Response> {
  const principal = requirePrincipal(ctx);
  requireAdmin(principal, "VerifyChain");
  const head = await readChainHead(deps.pool);
  const start = req.startSequence === 0n ? 1n : req.startSequence;
  let end = req.endSequence === 0n ? head.lastSequence : req.endSequence;
  if (req.endSequence !== 0n) {
    if (end < start) {
      throw invalidArgument("range reversed", [
        { field: "end_sequence", description: "before start_sequence" },
      ]);
    }
    if (end - start + 1n > MAX_VERIFY_RANGE) {
      throw invalidArgument("range too long", [
        { field: "end_sequence", description: `at most ${MAX_VERIFY_RANGE} records per call` },
      ]);
    }
  } else if (end - start + 1n > MAX_VERIFY_RANGE) {
    end = start + MAX_VERIFY_RANGE - 1n; // an open range is cut to the limit; last_sequence tells where
  }
  if (end > head.lastSequence) end = head.lastSequence; // records past the head were never written

  const result = await verifyRange(deps, start, end, head);
  await publishVerification(deps, { principal, correlationId: ctx.correlationId }, start, end, result).catch(
    (err: unknown) => deps.logger.warn({ err }, "could not publish the chain verification event"),
  );
  return result;
}

async function verifyRange(
  deps: AuditDeps,
  start: bigint,
  end: bigint,
  head: { lastSequence: bigint; lastHash: string },
): Promise<Response> {
  if (start > end) return { ok: true, recordsChecked: 0n, lastSequence: 0n, lastHash: "" };
  let prevHash = GENESIS_HASH;
  if (start > 1n) {
    const before = await getRecord(deps.pool, start - 1n);
    if (before === undefined) {
      return broken(0n, 0n, "", {
        sequence: start - 1n,
        kind: ChainBreakKind.SEQUENCE_GAP,
        reason: `sequence ${start - 1n} (the record before the range) is missing`,
      });
    }
    prevHash = before.hash;
  }
  const verifier = new ChainVerifier(start, prevHash);
  for await (const batch of scanRange(deps.pool, start, end, deps.batchSize)) {
    for (const record of batch) {
      const found = verifier.check(record);
      if (found) return broken(verifier.checked, verifier.lastSequence, verifier.lastHash, found);
    }
  }
  const tail = verifier.finish(end);
  if (tail) return broken(verifier.checked, verifier.lastSequence, verifier.lastHash, tail);
  if (end === head.lastSequence && verifier.lastHash !== head.lastHash) {
    return broken(verifier.checked, verifier.lastSequence, verifier.lastHash, {
      sequence: end,
      kind: ChainBreakKind.HASH_MISMATCH,
      reason: `hash mismatch: record ${end} stores ${shortHash(verifier.lastHash)}, the chain head anchors ${shortHash(head.lastHash)}`,
    });
  }
  return {
    ok: true,
    recordsChecked: verifier.checked,
    lastSequence: verifier.lastSequence,
    lastHash: verifier.lastHash,
  };
}

/** AuditChainVerified, plus AuditChainBroken when the range is not intact. */
async function publishVerification(
  deps: AuditDeps,
  who: Parameters<typeof publishAuditUse>[2],
  start: bigint,
  end: bigint,
  r: Response,
): Promise<void> {
  const verified = create(AuditChainVerifiedSchema, {
    startSequence: start,
    endSequence: end,
    ok: r.ok ?? false,
    recordsChecked: r.recordsChecked ?? 0n,
    firstBrokenSequence: r.firstBrokenSequence ?? 0n,
  });
  const events: AuditUseEvent<DescMessage>[] = [
    {
      schema: AuditChainVerifiedSchema,
      payload: verified,
      aggregateType: "audit_chain",
      aggregateId: "global",
    },
  ];
  if (!r.ok) {
    const broken = create(AuditChainBrokenSchema, {
      firstBrokenSequence: r.firstBrokenSequence ?? 0n,
      breakKind: ChainBreakKindSchema.value[r.breakKind ?? 0]?.name ?? "",
      reason: r.reason ?? "",
    });
    events.push({
      schema: AuditChainBrokenSchema,
      payload: broken,
      aggregateType: "audit_chain",
      aggregateId: "global",
    });
  }
  await publishAuditUse(deps.pool, deps.subjects, who, events);
}

function broken(checked: bigint, lastSequence: bigint, lastHash: string, b: ChainBreak): Response {
  return {
    ok: false,
    recordsChecked: checked,
    firstBrokenSequence: b.sequence,
    reason: b.reason,
    breakKind: b.kind,
    lastSequence,
    lastHash,
  };
}
