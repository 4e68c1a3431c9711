import { EventEmitter } from "node:events";
import { Metadata } from "@grpc/grpc-js";
import { Code } from "../../../mesh/errors.js";
import type { UpstreamName } from "../routes/route-table.js";
import type { UpstreamSessions } from "../routes/upstream-sessions.js";
import { openUpstreamCall } from "./h2-unary.js";

/**
 * A server-streaming call in flight, as the REST bridge relays it: `data` once per response
 * message (its protobuf bytes), then `end`, then `status` once (as grpc-js reports a status:
 * trailers in `metadata`). `pause`/`resume` apply backpressure to the upstream stream.
 */
export interface ServerStreamCall extends EventEmitter {
  pause(): void;
  resume(): void;
  cancel(): void;
}

/**
 * A server-streaming call of raw protobuf bytes over the gateway's HTTP/2 upstream sessions,
 * like {@link callUnaryH2} for unary calls: REST streams (following a run's logs) share the
 * gRPC door's connections instead of keeping grpc-js channels of their own. Response messages
 * are cut out of the length-prefixed frames; one larger than `maxMessageBytes`, or compressed
 * (the gateway asks for none), ends the call with RESOURCE_EXHAUSTED or INTERNAL.
 */
export function callServerStreamH2(
  sessions: UpstreamSessions,
  upstream: UpstreamName,
  path: string,
  request: Uint8Array,
  metadata: Metadata,
  deadline: number | undefined,
  maxMessageBytes: number,
): ServerStreamCall {
  const call = new EventEmitter() as ServerStreamCall;
  let pending: Buffer = Buffer.alloc(0);
  const { up, fail } = openUpstreamCall(sessions, upstream, path, request, metadata, deadline, (status) => {
    call.emit("end");
    // As grpc-js: a stream that ends inside a message did not end well.
    call.emit(
      "status",
      status.code === Code.OK && pending.length > 0
        ? {
            code: Code.INTERNAL,
            details: "upstream ended the stream inside a message",
            metadata: new Metadata(),
          }
        : status,
    );
  });
  /** Set once the call failed on our side: no message is delivered after that. */
  let failed = false;
  const stop = (code: Code, details: string) => {
    failed = true;
    fail(code, details);
  };
  up.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (!failed && pending.length >= 5) {
      const length = pending.readUInt32BE(1);
      if (length > maxMessageBytes) {
        stop(Code.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs. ${maxMessageBytes})`);
        return;
      }
      if (pending[0] !== 0) {
        stop(Code.INTERNAL, "upstream sent a compressed message the gateway did not ask for");
        return;
      }
      if (pending.length < 5 + length) break;
      const message = pending.subarray(5, 5 + length);
      pending = pending.subarray(5 + length);
      call.emit("data", message);
    }
  });
  call.pause = () => up.pause();
  call.resume = () => up.resume();
  call.cancel = () => stop(Code.CANCELLED, "Cancelled on client");
  return call;
}
