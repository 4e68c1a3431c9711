/**
 * Turns the raw chunks an agent sends into stored log lines. Pure.
 *
 * Rules (logs.proto): chunks carry a per-run seq; a chunk whose seq is not above the highest
 * stored one is a resend and ignored. A line ends at "\n" and may span chunks of the same
 * stream and step, so the unfinished tail of each (stream, step) is carried in the cursor as
 * raw bytes — decoding only whole lines keeps multi-byte characters split across chunks intact.
 * Lines are UTF-8 with invalid bytes replaced, a trailing "\r" dropped, the run's secret answer
 * values replaced by "[REDACTED]", and split into pieces of at most 16 KiB. Offsets are dense
 * from 0 in order of arrival.
 */

export const MAX_LINE_BYTES = 16 * 1024;
export const REDACTED = "[REDACTED]";

/** One chunk as received. */
export interface RawChunk {
  seq: bigint;
  stream: number;
  step: number | undefined;
  data: Uint8Array;
  timeMs: number;
}

/** An unfinished line of one (stream, step). */
export interface Partial {
  stream: number;
  step: number | null;
  /** Base64 of the bytes so far. */
  data: string;
  timeMs: number;
}

/** Per-run state of the log: dedupe watermark, next offset and unfinished lines. */
export interface LogCursor {
  lastSeq: bigint;
  nextOffset: bigint;
  partials: Record<string, Partial>;
}

/** One line to store. */
export interface LogLine {
  offset: bigint;
  stream: number;
  step: number | null;
  text: string;
  timeMs: number;
}

export const EMPTY_CURSOR: LogCursor = { lastSeq: 0n, nextOffset: 0n, partials: {} };

const decoder = new TextDecoder("utf-8", { fatal: false });
const encoder = new TextEncoder();

/** Appends chunks to a log; returns the lines to store and the new cursor. */
export function appendChunks(
  cursor: LogCursor,
  chunks: readonly RawChunk[],
  secrets: readonly string[] = [],
): { lines: LogLine[]; cursor: LogCursor } {
  const lines: LogLine[] = [];
  const partials = { ...cursor.partials };
  let lastSeq = cursor.lastSeq;
  let next = cursor.nextOffset;
  const emit = (stream: number, step: number | null, bytes: Uint8Array, timeMs: number) => {
    for (const text of toTexts(bytes, secrets)) {
      lines.push({ offset: next, stream, step, text, timeMs });
      next += 1n;
    }
  };
  const sorted = [...chunks].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  for (const chunk of sorted) {
    if (chunk.seq <= lastSeq) continue;
    lastSeq = chunk.seq;
    const step = chunk.step ?? null;
    const key = `${chunk.stream}/${step ?? ""}`;
    const prior = partials[key];
    let buf = prior ? concat(Buffer.from(prior.data, "base64"), chunk.data) : chunk.data;
    let startMs = prior ? prior.timeMs : chunk.timeMs;
    let nl = buf.indexOf(0x0a);
    while (nl >= 0) {
      emit(chunk.stream, step, buf.subarray(0, nl), startMs);
      buf = buf.subarray(nl + 1);
      startMs = chunk.timeMs;
      nl = buf.indexOf(0x0a);
    }
    while (buf.length > MAX_LINE_BYTES) {
      const cut = utf8Boundary(buf, MAX_LINE_BYTES);
      emit(chunk.stream, step, buf.subarray(0, cut), startMs);
      buf = buf.subarray(cut);
    }
    if (buf.length === 0) delete partials[key];
    else
      partials[key] = {
        stream: chunk.stream,
        step,
        data: Buffer.from(buf).toString("base64"),
        timeMs: startMs,
      };
  }
  return { lines, cursor: { lastSeq, nextOffset: next, partials } };
}

/** Ends every unfinished line (the run is over); returns them and the emptied cursor. */
export function flushPartials(
  cursor: LogCursor,
  secrets: readonly string[] = [],
): { lines: LogLine[]; cursor: LogCursor } {
  const lines: LogLine[] = [];
  let next = cursor.nextOffset;
  const ordered = Object.values(cursor.partials).sort((a, b) => a.timeMs - b.timeMs);
  for (const p of ordered) {
    for (const text of toTexts(Buffer.from(p.data, "base64"), secrets)) {
      lines.push({ offset: next, stream: p.stream, step: p.step, text, timeMs: p.timeMs });
      next += 1n;
    }
  }
  return { lines, cursor: { lastSeq: cursor.lastSeq, nextOffset: next, partials: {} } };
}

/** Replaces every occurrence of a secret (of at least 4 characters) by "[REDACTED]". */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4 && out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}

function toTexts(bytes: Uint8Array, secrets: readonly string[]): string[] {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0d) end -= 1;
  const text = redact(decoder.decode(bytes.subarray(0, end)), secrets);
  return splitUtf8(text, MAX_LINE_BYTES);
}

/** Splits a string into pieces of at most `max` UTF-8 bytes, never inside a character. */
export function splitUtf8(text: string, max: number): string[] {
  if (text.length * 3 <= max || encoder.encode(text).length <= max) return [text];
  const pieces: string[] = [];
  let current = "";
  let size = 0;
  for (const ch of text) {
    const n = encoder.encode(ch).length;
    if (size + n > max) {
      pieces.push(current);
      current = "";
      size = 0;
    }
    current += ch;
    size += n;
  }
  pieces.push(current);
  return pieces;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Largest cut <= max that does not fall inside a UTF-8 sequence (continuation bytes 10xxxxxx). */
function utf8Boundary(buf: Uint8Array, max: number): number {
  let cut = max;
  while (cut > max - 4 && cut > 0 && ((buf[cut] ?? 0) & 0xc0) === 0x80) cut -= 1;
  return cut > 0 ? cut : max;
}
