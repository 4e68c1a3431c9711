import { type ClientHttp2Stream, constants, type IncomingHttpHeaders } from "node:http2";
import { Metadata, type StatusObject } from "@grpc/grpc-js";
import { Code } from "../../../mesh/errors.js";
import type { UpstreamName } from "../routes/route-table.js";
import type { UpstreamSessions } from "../routes/upstream-sessions.js";
import { codeOfHttpStatus, formatTimeout, statusOfReset } from "./grpc-wire.js";

/** A unary call in flight. */
export interface UnaryCall {
  cancel(): void;
}

/**
 * A unary call of raw protobuf bytes over the gateway's HTTP/2 upstream sessions — what the REST
 * bridge uses, so both doors share one connection per replica and neither pays grpc-js's
 * per-call cost. Reports the upstream's status as grpc-js would (trailers in `status.metadata`,
 * `grpc-message` decoded) with the response message, if one arrived; transport failures become
 * UNAVAILABLE, resets the codes grpc-js gives them.
 */
export function callUnaryH2(
  sessions: UpstreamSessions,
  upstream: UpstreamName,
  path: string,
  request: Uint8Array,
  metadata: Metadata,
  deadline: number | undefined,
  onStatus: (status: StatusObject, response: Buffer | undefined) => void,
): UnaryCall {
  const chunks: Buffer[] = [];
  const { up, fail } = openUpstreamCall(
    sessions,
    upstream,
    path,
    request,
    metadata,
    deadline,
    (status, trailers) => onStatus(status, trailers ? message(Buffer.concat(chunks)) : undefined),
  );
  up.on("data", (c: Buffer) => chunks.push(c));
  return { cancel: () => fail(Code.CANCELLED, "Cancelled on client") };
}

/** A call's upstream stream, opened and sent by {@link openUpstreamCall}. */
export interface UpstreamCall {
  /** The upstream stream: its `data` is the response's length-prefixed frames. */
  readonly up: ClientHttp2Stream;
  /** Ends the call now with a status of our own (deadline, cancel, a bad message), closing upstream. */
  fail(code: Code, details: string): void;
}

/**
 * Opens a call of `path` on the upstream sessions and sends its one request message; what the
 * unary and the server-streaming calls share. `onStatus` is called once: with the status of
 * {@link UpstreamCall.fail} (the deadline fails the call too), or when the stream closes with
 * {@link closingStatus} and whether trailers arrived.
 */
export function openUpstreamCall(
  sessions: UpstreamSessions,
  upstream: UpstreamName,
  path: string,
  request: Uint8Array,
  metadata: Metadata,
  deadline: number | undefined,
  onStatus: (status: StatusObject, trailers: boolean) => void,
): UpstreamCall {
  let timer: NodeJS.Timeout | undefined;
  let done = false;
  const report = (status: StatusObject, trailers: boolean) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    onStatus(status, trailers);
  };
  const up = sessions.request(upstream, requestHeaders(path, metadata, deadline));
  const fail = (code: Code, details: string) => {
    up.close(constants.NGHTTP2_CANCEL);
    report({ code, details, metadata: new Metadata() }, false);
  };
  if (deadline !== undefined) {
    timer = setTimeout(() => fail(Code.DEADLINE_EXCEEDED, "Deadline exceeded"), deadline - Date.now());
  }
  let trailers: IncomingHttpHeaders | undefined;
  let httpStatus = 200;
  let error: (Error & { code?: string }) | undefined;
  up.once("response", (h, flags) => {
    httpStatus = Number(h[constants.HTTP2_HEADER_STATUS]);
    if (flags & constants.NGHTTP2_FLAG_END_STREAM) trailers = h;
  });
  up.once("trailers", (t) => {
    trailers = t;
  });
  up.on("error", (e) => {
    error = e;
  });
  up.once("close", () => report(closingStatus(up, trailers, httpStatus, error), trailers !== undefined));
  up.end(frame(request));
  return { up, fail };
}

/** The request headers of a call of `path` carrying `metadata`, as grpc-js would send them. */
function requestHeaders(
  path: string,
  metadata: Metadata,
  deadline: number | undefined,
): Record<string, string | string[] | number> {
  const headers = metadata.toHttp2Headers() as Record<string, string | string[] | number>;
  headers[constants.HTTP2_HEADER_METHOD] = "POST";
  headers[constants.HTTP2_HEADER_PATH] = path;
  headers[constants.HTTP2_HEADER_SCHEME] = "http";
  headers[constants.HTTP2_HEADER_CONTENT_TYPE] = "application/grpc";
  headers.te = "trailers";
  if (deadline !== undefined) headers["grpc-timeout"] = formatTimeout(deadline - Date.now());
  return headers;
}

/** One length-prefixed, uncompressed message. */
export function frame(message: Uint8Array): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/**
 * The status of an upstream stream that closed: its trailers' when it sent them; UNAVAILABLE
 * when the connection failed; otherwise what its reset code means.
 */
function closingStatus(
  up: ClientHttp2Stream,
  trailers: IncomingHttpHeaders | undefined,
  httpStatus: number,
  error: (Error & { code?: string }) | undefined,
): StatusObject {
  if (trailers) return statusOf(trailers, httpStatus);
  if ((error && error.code !== "ERR_HTTP2_STREAM_ERROR") || up.session?.destroyed) {
    const details = `upstream unavailable: ${error?.message ?? "connection closed"}`;
    return { code: Code.UNAVAILABLE, details, metadata: new Metadata() };
  }
  const rst = up.rstCode ?? constants.NGHTTP2_NO_ERROR;
  const s =
    rst === constants.NGHTTP2_NO_ERROR
      ? { code: Code.INTERNAL, message: "upstream ended the call without a status" }
      : statusOfReset(rst);
  return { code: s.code, details: s.message, metadata: new Metadata() };
}

function statusOf(trailers: IncomingHttpHeaders, httpStatus: number): StatusObject {
  const md = Metadata.fromHttp2Headers(trailers);
  const raw = md.get("grpc-status")[0];
  md.remove("grpc-status");
  const msg = md.get("grpc-message")[0];
  md.remove("grpc-message");
  let details = typeof msg === "string" ? msg : "";
  try {
    details = decodeURI(details);
  } catch {
    // relayed as received
  }
  if (typeof raw !== "string") {
    return {
      code: codeOfHttpStatus(httpStatus),
      details: `upstream answered HTTP ${httpStatus}`,
      metadata: md,
    };
  }
  return { code: Number(raw) as Code, details, metadata: md };
}

/** The one response message's payload; a compressed or missing one is reported as none. */
function message(body: Buffer): Buffer | undefined {
  if (body.length < 5 || body[0] !== 0) return undefined;
  return body.subarray(5, 5 + body.readUInt32BE(1));
}
