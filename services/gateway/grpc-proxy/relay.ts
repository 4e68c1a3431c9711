/**
 * The two byte pipes of a proxied call, each with backpressure: when the receiving side's
 * HTTP/2 window is full (`write()` returned false) the sending side is paused until 'drain', so
 * a slow reader holds back its writer instead of the gateway buffering between them.
 */
import type { ClientHttp2Stream, ServerHttp2Stream } from "node:http2";
import type { ServiceError } from "../../../mesh/errors.js";
import { FrameMeter, truncated } from "./frames.js";

/** What the pipes need from their call. */
export interface RelayedCall {
  /** True once the call has its status or the client went away: stop relaying. */
  readonly done: boolean;
  readonly down: ServerHttp2Stream;
  write(chunk: Buffer): boolean;
  fail(err: ServiceError): void;
}

/**
 * Client → upstream, for client and bidi streams. Every message's declared length is checked
 * against `maxMessageBytes` as it passes (RESOURCE_EXHAUSTED before its payload is read), and a
 * stream ending inside a message is refused rather than handed on truncated.
 */
export function relayRequests(
  down: ServerHttp2Stream,
  up: ClientHttp2Stream,
  call: RelayedCall,
  maxMessageBytes: number,
): void {
  const meter = new FrameMeter(maxMessageBytes);
  down.on("data", (chunk: Buffer) => {
    if (call.done) return;
    const err = meter.push(chunk);
    if (err) return call.fail(err);
    if (!up.write(chunk)) {
      down.pause();
      up.once("drain", () => down.resume());
    }
  });
  down.once("end", () => {
    if (call.done) return;
    if (meter.partial) return call.fail(truncated());
    up.end();
  });
}

/** Upstream → client: every message, as the upstream framed it. */
export function relayResponses(up: ClientHttp2Stream, call: RelayedCall): void {
  up.on("data", (chunk: Buffer) => {
    if (call.done) return;
    if (!call.write(chunk)) {
      up.pause();
      call.down.once("drain", () => up.resume());
    }
  });
}
