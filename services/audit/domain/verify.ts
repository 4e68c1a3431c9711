import type { AuditRecord } from "../../../gen/codex/audit/v1/audit_record_pb.js";
import { ChainBreakKind } from "../../../gen/codex/audit/v1/audit_service_pb.js";
import { computeHash, shortHash } from "./chain.js";

/** The first problem found in a range of the chain. */
export interface ChainBreak {
  sequence: bigint;
  kind: ChainBreakKind;
  reason: string;
}

/**
 * Checks records one at a time, in ascending sequence order, so a verification of millions of
 * records streams through constant memory. Feed it every record of the range; it remembers the
 * previous hash and the sequence it expects next.
 *
 * Per record, in this order: the sequence is the expected one (else a record is missing:
 * SEQUENCE_GAP names the missing sequence); the stored hash equals the recomputed one (else the
 * record was modified: HASH_MISMATCH); prev_hash equals the previous record's hash (else a
 * record before it was modified and re-hashed, inserted or removed: PREV_HASH_MISMATCH).
 */
export class ChainVerifier {
  #expected: bigint;
  #prevHash: string;
  #checked = 0n;
  #lastHash = "";
  #lastSequence = 0n;

  /** `prevHash` is the hash of the record before `firstSequence` (GENESIS_HASH for sequence 1). */
  constructor(firstSequence: bigint, prevHash: string) {
    this.#expected = firstSequence;
    this.#prevHash = prevHash;
  }

  get checked(): bigint {
    return this.#checked;
  }
  get lastSequence(): bigint {
    return this.#lastSequence;
  }
  get lastHash(): string {
    return this.#lastHash;
  }

  /** Checks the next record; returns the break it shows, if any (stop feeding after one). */
  check(record: AuditRecord): ChainBreak | undefined {
    if (record.sequence !== this.#expected) return this.#missing(record.sequence);
    this.#checked++;
    this.#lastSequence = record.sequence;
    this.#lastHash = record.hash;
    const computed = computeHash(record);
    if (computed !== record.hash) {
      return {
        sequence: record.sequence,
        kind: ChainBreakKind.HASH_MISMATCH,
        reason: `hash mismatch: stored ${shortHash(record.hash)}, computed ${shortHash(computed)}`,
      };
    }
    if (record.prevHash !== this.#prevHash) {
      return {
        sequence: record.sequence,
        kind: ChainBreakKind.PREV_HASH_MISMATCH,
        reason:
          `prev_hash mismatch: record links to ${shortHash(record.prevHash)}, ` +
          `previous record's hash is ${shortHash(this.#prevHash)}`,
      };
    }
    this.#prevHash = record.hash;
    this.#expected++;
    return undefined;
  }

  /**
   * Call after the last record: when the range should reach `endSequence` but records stopped
   * earlier, the tail was deleted.
   */
  finish(endSequence: bigint): ChainBreak | undefined {
    return this.#expected <= endSequence ? this.#missing(undefined) : undefined;
  }

  #missing(next: bigint | undefined): ChainBreak {
    const after = next === undefined ? "no record follows" : `next record is ${next}`;
    return {
      sequence: this.#expected,
      kind: ChainBreakKind.SEQUENCE_GAP,
      reason: `sequence ${this.#expected} is missing (${after})`,
    };
  }
}
