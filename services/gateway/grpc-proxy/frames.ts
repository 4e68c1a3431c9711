/**
 * gRPC's length-prefixed messages (1 byte compressed flag, 4 bytes big-endian length, payload),
 * read only as far as the gateway must: to enforce GRPC_MAX_MESSAGE_BYTES on every request
 * message as it streams past, and to take the one request message of a unary or server-streaming
 * call apart for the authorizer. The bytes forwarded are always the client's, unchanged.
 */
import { gunzipSync, inflateSync } from "node:zlib";
import { Code, invalidArgument, ServiceError } from "../../../mesh/errors.js";

const PREFIX = 5;

/** RESOURCE_EXHAUSTED as grpc-js words it for a message above the limit. */
export function tooLarge(length: number, max: number): ServiceError {
  return new ServiceError(Code.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs. ${max})`);
}

/** A request that ended inside a message: the client's fault, not the gateway's. */
export function truncated(): ServiceError {
  return invalidArgument("request stream ended inside a message (truncated length-prefixed frame)", [
    { field: "", description: "truncated gRPC frame", reason: "TRUNCATED_FRAME" },
  ]);
}

/**
 * Follows message boundaries across chunks without keeping the chunks: only the 5-byte prefix
 * is ever copied. `push` returns an error as soon as a declared length exceeds `max`, so a huge
 * message is refused before its payload arrives.
 */
export class FrameMeter {
  private readonly prefix = Buffer.alloc(PREFIX);
  private prefixFill = 0;
  private payloadLeft = 0;
  /** Complete messages seen so far. */
  messages = 0;

  constructor(private readonly max: number) {}

  /** True when the stream so far ends inside a message. */
  get partial(): boolean {
    return this.prefixFill > 0 || this.payloadLeft > 0;
  }

  push(chunk: Buffer): ServiceError | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.payloadLeft > 0) {
        const take = Math.min(this.payloadLeft, chunk.length - at);
        this.payloadLeft -= take;
        at += take;
        if (this.payloadLeft === 0) this.messages++;
        continue;
      }
      const take = Math.min(PREFIX - this.prefixFill, chunk.length - at);
      chunk.copy(this.prefix, this.prefixFill, at, at + take);
      this.prefixFill += take;
      at += take;
      if (this.prefixFill < PREFIX) break;
      this.prefixFill = 0;
      const length = this.prefix.readUInt32BE(1);
      if (length > this.max) return tooLarge(length, this.max);
      if (length === 0) this.messages++;
      else this.payloadLeft = length;
    }
    return undefined;
  }
}

/** The one request message of a unary or server-streaming call: the raw frame, and its payload. */
export interface SingleMessage {
  /** Exactly the bytes the client sent (prefix included): what is forwarded. */
  readonly frame: Buffer;
  readonly compressed: boolean;
  readonly payload: Buffer;
}

/** Splits a complete request body into its one message; grpc-js's codes for none or two. */
export function singleMessage(body: Buffer, path: string): SingleMessage {
  if (body.length === 0) {
    throw new ServiceError(Code.UNIMPLEMENTED, `Received no request message for method ${path}`);
  }
  if (body.length < PREFIX) throw truncated();
  const length = body.readUInt32BE(1);
  if (body.length < PREFIX + length) throw truncated();
  if (body.length > PREFIX + length) {
    throw new ServiceError(Code.UNIMPLEMENTED, `Received a second request message for method ${path}`);
  }
  return { frame: body, compressed: body[0] !== 0, payload: body.subarray(PREFIX) };
}

/**
 * The payload as protobuf bytes, for decoding a copy. Compressed requests are forwarded as they
 * are (the upstream gets the client's `grpc-encoding`); only the authorizer's copy is inflated,
 * for the two encodings grpc-js itself speaks, and never beyond `max` bytes.
 */
export function plainPayload(msg: SingleMessage, encoding: string | undefined, max: number): Buffer {
  if (!msg.compressed) return msg.payload;
  try {
    if (encoding === "gzip") return gunzipSync(msg.payload, { maxOutputLength: max });
    if (encoding === "deflate") return inflateSync(msg.payload, { maxOutputLength: max });
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw tooLarge(max + 1, max);
    throw invalidArgument(`request message does not decompress as ${encoding}`, [
      { field: "", description: err instanceof Error ? err.message : String(err) },
    ]);
  }
  if (encoding === undefined || encoding === "identity") {
    throw invalidArgument("request message is flagged compressed but grpc-encoding names no compression");
  }
  throw new ServiceError(Code.UNIMPLEMENTED, `grpc-encoding "${encoding}" is not supported by the gateway`);
}
