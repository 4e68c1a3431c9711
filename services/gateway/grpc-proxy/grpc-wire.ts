/**
 * The parts of the gRPC-over-HTTP/2 wire format the byte-forwarding front door has to read or
 * write itself: `grpc-timeout`, `grpc-message` percent-encoding, and the statuses grpc-js derives
 * from an HTTP status or an RST_STREAM code (so a client of the gateway sees what a client of the
 * upstream would).
 */
import { constants } from "node:http2";
import { Code } from "../../../mesh/errors.js";

const TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000001 };

/** Milliseconds of a `grpc-timeout` value; undefined when absent or malformed (grpc-js ignores those too). */
export function parseTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = TIMEOUT.exec(value);
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : undefined;
}

/** A `grpc-timeout` value for the time left, at most 8 digits, rounded up so it never shrinks to 0. */
export function formatTimeout(ms: number): string {
  const left = Math.max(1, Math.ceil(ms));
  if (left < 1e8) return `${left}m`;
  if (left / 1000 < 1e8) return `${Math.ceil(left / 1000)}S`;
  if (left / 60_000 < 1e8) return `${Math.ceil(left / 60_000)}M`;
  return `${Math.min(99_999_999, Math.ceil(left / 3_600_000))}H`;
}

/**
 * `grpc-message` as the gRPC spec wants it: UTF-8, with bytes outside 0x20–0x7E and `%` itself
 * percent-encoded. Clients decode any `%XX`, so this reads the same in grpc-js (decodeURI) as in Go.
 */
export function encodeGrpcMessage(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The status grpc-js gives a response whose HTTP status is not 200 and that has no grpc-status. */
export function codeOfHttpStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.INTERNAL;
    case 401:
      return Code.UNAUTHENTICATED;
    case 403:
      return Code.PERMISSION_DENIED;
    case 404:
      return Code.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.UNAVAILABLE;
    default:
      return Code.UNKNOWN;
  }
}

/** The status grpc-js reports when the peer resets a stream with `rstCode` before any status. */
export function statusOfReset(rstCode: number): { code: Code; message: string } {
  switch (rstCode) {
    case constants.NGHTTP2_REFUSED_STREAM:
      return { code: Code.UNAVAILABLE, message: "upstream refused the stream" };
    case constants.NGHTTP2_CANCEL:
      return { code: Code.CANCELLED, message: "upstream cancelled the call" };
    case constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return {
        code: Code.RESOURCE_EXHAUSTED,
        message: "upstream: bandwidth exhausted or memory limit exceeded",
      };
    case constants.NGHTTP2_INADEQUATE_SECURITY:
      return { code: Code.PERMISSION_DENIED, message: "upstream: protocol not secure enough" };
    default:
      return { code: Code.INTERNAL, message: `upstream reset the stream with code ${rstCode}` };
  }
}
