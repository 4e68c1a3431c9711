import type { CallOptions, Client, Metadata, StatusObject } from "@grpc/grpc-js";
import { Code } from "../../../mesh/errors.js";

/** The channel-level call grpc-js's Client wraps (messages are already serialized bytes). */
type ChannelCall = ReturnType<ReturnType<Client["getChannel"]>["createCall"]>;

/** What a forwarded unary call reports. */
export interface UnaryListener {
  /** The upstream's response headers. */
  onMetadata(metadata: Metadata): void;
  /** The final status (trailers in `status.metadata`) and the response, if one arrived. */
  onStatus(status: StatusObject, response: Buffer | undefined): void;
}

/** A unary call in flight. */
export interface UnaryCall {
  cancel(): void;
}

/**
 * A unary call of raw bytes on a channel, without grpc-js's Client layer.
 *
 * Why not `Client.makeUnaryRequest`: with pass-through serializers the Client adds nothing the
 * gateway uses (interceptors, a typed EventEmitter surface) but costs on every call — notably it
 * captures an `Error` stack trace per call for its own error messages, which the gateway never
 * shows. Measured on this machine, a raw channel call spends ~40-50 µs less CPU per call.
 * Behaviour is the Client's: one `startRead`, the first response message kept, a second one
 * cancels with UNIMPLEMENTED, and the upstream's status is reported unchanged (an OK status
 * without a message included — the caller decides what that means, as before).
 */
export function callUnary(
  client: Client,
  path: string,
  request: Buffer,
  metadata: Metadata,
  options: CallOptions,
  listener: UnaryListener,
): UnaryCall {
  const call: ChannelCall = client
    .getChannel()
    .createCall(path, options.deadline ?? Number.POSITIVE_INFINITY, undefined, null, null);
  let response: Buffer | undefined;
  let finished = false;
  call.start(metadata, {
    onReceiveMetadata: (md: Metadata) => listener.onMetadata(md),
    onReceiveMessage: (message: Buffer) => {
      if (response !== undefined) {
        call.cancelWithStatus(Code.UNIMPLEMENTED, "Too many responses received");
        return;
      }
      response = message;
    },
    onReceiveStatus: (status: StatusObject) => {
      if (finished) return;
      finished = true;
      listener.onStatus(status, response);
    },
  });
  call.sendMessageWithContext({}, request);
  call.halfClose();
  call.startRead();
  return { cancel: () => call.cancelWithStatus(Code.CANCELLED, "Cancelled on client") };
}
