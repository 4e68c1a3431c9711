import type { ServerResponse } from "node:http";
import type { JsonValue } from "@bufbuild/protobuf";
import type { StatusObject } from "@grpc/grpc-js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import type { ServerStreamCall } from "../grpc-proxy/h2-stream.js";

/** How a server-streaming RPC is written over HTTP/1.1. */
export type StreamFormat = "ndjson" | "sse";

/** `Accept: text/event-stream` asks for SSE; everything else gets newline-delimited JSON. */
export function streamFormatOf(accept: string | undefined): StreamFormat {
  return accept?.includes("text/event-stream") ? "sse" : "ndjson";
}

export interface StreamRelayOptions {
  readonly format: StreamFormat;
  /** Gateway headers (request id, rate limits) for the response. */
  readonly headers: Readonly<Record<string, string>>;
  readonly toJson: (buf: Buffer) => JsonValue;
  readonly errorJson: (err: ServiceError) => JsonValue;
  /** Answers an error that came before any message as an ordinary error response. */
  readonly writeError: (err: ServiceError) => void;
  readonly onEnd: (code: Code) => void;
}

/**
 * Relays a server stream to an HTTP response, message by message.
 * - NDJSON (`application/x-ndjson`): one `{"result": …}` per line, a final `{"error": …}` line on
 *   failure — grpc-gateway's streaming shape.
 * - SSE (`text/event-stream`): `data: <json>` per message; on failure `event: error` with the
 *   error shape; on success `event: end`, so EventSource clients know not to reconnect.
 * Like grpc-gateway, the 200 goes out with the first message: an error before any message (the
 * run does not exist, the caller may not read it) is an ordinary error response with its mapped
 * HTTP status.
 * A client that disconnects cancels the upstream call; backpressure pauses the upstream.
 */
export function relayStream(up: ServerStreamCall, res: ServerResponse, o: StreamRelayOptions): void {
  let status: StatusObject | undefined;
  let drained = false;
  let done = false;
  const open = () => {
    if (res.headersSent) return;
    res.writeHead(200, {
      ...o.headers,
      "content-type": o.format === "sse" ? "text/event-stream" : "application/x-ndjson",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    });
    res.flushHeaders();
  };
  const frame = (json: JsonValue, event?: string) =>
    o.format === "sse"
      ? `${event ? `event: ${event}\n` : ""}data: ${JSON.stringify(json)}\n\n`
      : `${JSON.stringify(event === "error" ? { error: json } : { result: json })}\n`;
  const finish = () => {
    if (!status || !drained || done) return;
    done = true;
    o.onEnd(status.code);
    if (status.code === Code.OK) {
      open();
      res.end(o.format === "sse" ? frame({}, "end") : undefined);
      return;
    }
    const err = ServiceError.from(Object.assign(new Error(status.details), status));
    if (!res.headersSent) return o.writeError(err);
    res.end(frame(o.errorJson(err), "error"));
  };
  up.on("data", (buf: Buffer) => {
    open();
    let json: JsonValue;
    try {
      json = o.toJson(buf);
    } catch {
      up.cancel();
      return;
    }
    if (!res.write(frame(json))) {
      up.pause();
      res.once("drain", () => up.resume());
    }
  });
  up.on("end", () => {
    drained = true;
    finish();
  });
  up.on("status", (s: StatusObject) => {
    status = s;
    finish();
  });
  up.on("error", () => {}); // the status carries it
  res.on("close", () => {
    if (done) return;
    // The client went away (curl interrupted, browser tab closed): stop the upstream work.
    up.cancel();
    up.resume();
  });
}
