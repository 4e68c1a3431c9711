import { EventEmitter } from "node:events";
import { constants, type IncomingHttpHeaders } from "node:http2";
import { Metadata, type StatusObject } from "@grpc/grpc-js";
import { Code } from "../../../mesh/errors.js";
import type { UpstreamName } from "../routes/route-table.js";
import type { UpstreamSessions } from "../routes/upstream-sessions.js";
import { closingStatus, frame, requestHeaders } from "./h2-unary.js";

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
  let reported = false;
  const report = (status: StatusObject) => {
    if (reported) return;
    reported = true;
    call.emit("end");
    call.emit("status", status);
  };
  const up = sessions.request(upstream, requestHeaders(path, metadata, deadline));
  let trailers: IncomingHttpHeaders | undefined;
  let httpStatus = 200;
  let error: (Error & { code?: string }) | undefined;
  /** A status of our own (a bad message, the deadline, a cancel), which wins over the upstream's. */
  let local: StatusObject | undefined;
  const fail = (code: Code, details: string) => {
    local ??= { code, details, metadata: new Metadata() };
    up.close(constants.NGHTTP2_CANCEL);
  };
  const timer =
    deadline === undefined
      ? undefined
      : setTimeout(() => fail(Code.DEADLINE_EXCEEDED, "Deadline exceeded"), deadline - Date.now());
  up.once("response", (h, flags) => {
    httpStatus = Number(h[constants.HTTP2_HEADER_STATUS]);
    if (flags & constants.NGHTTP2_FLAG_END_STREAM) trailers = h;
  });
  up.once("trailers", (t) => {
    trailers = t;
  });
  let pending: Buffer = Buffer.alloc(0);
  up.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (local === undefined && pending.length >= 5) {
      const length = pending.readUInt32BE(1);
      if (length > maxMessageBytes) {
        fail(Code.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs. ${maxMessageBytes})`);
        return;
      }
      if (pending[0] !== 0) {
        fail(Code.INTERNAL, "upstream sent a compressed message the gateway did not ask for");
        return;
      }
      if (pending.length < 5 + length) break;
      const message = pending.subarray(5, 5 + length);
      pending = pending.subarray(5 + length);
      call.emit("data", message);
    }
  });
  up.on("error", (e) => {
    error = e;
  });
  up.once("close", () => {
    clearTimeout(timer);
    const status = local ?? closingStatus(up, trailers, httpStatus, error);
    if (status.code === Code.OK && pending.length > 0) {
      // As grpc-js: a stream that ends inside a message did not end well.
      return report({
        code: Code.INTERNAL,
        details: "upstream ended the stream inside a message",
        metadata: new Metadata(),
      });
    }
    report(status);
  });
  up.end(frame(request));
  call.pause = () => up.pause();
  call.resume = () => up.resume();
  call.cancel = () => fail(Code.CANCELLED, "Cancelled on client");
  return call;
}
