import type { DescMessage, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { Metadata } from "@grpc/grpc-js";
import type { Principal } from "../context.js";

/** What every handler receives besides its request: who calls, with what metadata, until when. */
export interface CallContext {
  /** Fully-qualified method path, e.g. "/codex.project.v1.ProjectService/GetProject". */
  readonly method: string;
  /** Request metadata as received (lower-case keys). */
  readonly metadata: Metadata;
  /** Aborted when the client cancels or the deadline passes. */
  readonly signal: AbortSignal;
  /** The caller's deadline, if it set one. */
  readonly deadline: Date | undefined;
  /** Accepted or generated request id, echoed back in the `x-request-id` header. */
  readonly requestId: string;
  /** Correlation id shared by everything the original user request caused. */
  readonly correlationId: string;
  /** The authenticated principal forwarded by the gateway, if any. */
  readonly principal: Principal | undefined;
  /** Remote address, for logs. */
  readonly peer: string;
}

type Kind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";
type MethodOf<K extends Kind, I extends DescMessage, O extends DescMessage> = {
  methodKind: K;
  input: I;
  output: O;
};

/** Handler of one RPC, typed from the protobuf-es method descriptor. Streams are async iterables. */
export type MethodImpl<M> =
  M extends MethodOf<"unary", infer I, infer O>
    ? (req: MessageShape<I>, ctx: CallContext) => Promise<MessageInitShape<O>>
    : M extends MethodOf<"server_streaming", infer I, infer O>
      ? (req: MessageShape<I>, ctx: CallContext) => AsyncIterable<MessageInitShape<O>>
      : M extends MethodOf<"client_streaming", infer I, infer O>
        ? (reqs: AsyncIterable<MessageShape<I>>, ctx: CallContext) => Promise<MessageInitShape<O>>
        : M extends MethodOf<"bidi_streaming", infer I, infer O>
          ? (reqs: AsyncIterable<MessageShape<I>>, ctx: CallContext) => AsyncIterable<MessageInitShape<O>>
          : never;

/** A full implementation of a service: one handler per RPC, by its protobuf-es local name. */
export type ServiceImpl<S extends DescService> = { [K in keyof S["method"]]: MethodImpl<S["method"][K]> };

/** Per-call client options. */
export interface CallOptions {
  /** Deadline relative to now; defaults to the client's default timeout. */
  timeoutMs?: number;
  /** Extra request metadata (e.g. an idempotency key). */
  headers?: Record<string, string>;
  /** Cancels the call. */
  signal?: AbortSignal;
}

/** Client side of one RPC. */
export type MethodClient<M> =
  M extends MethodOf<"unary", infer I, infer O>
    ? (req: MessageInitShape<I>, opts?: CallOptions) => Promise<MessageShape<O>>
    : M extends MethodOf<"server_streaming", infer I, infer O>
      ? (req: MessageInitShape<I>, opts?: CallOptions) => AsyncIterable<MessageShape<O>>
      : M extends MethodOf<"client_streaming", infer I, infer O>
        ? (reqs: AsyncIterable<MessageInitShape<I>>, opts?: CallOptions) => Promise<MessageShape<O>>
        : M extends MethodOf<"bidi_streaming", infer I, infer O>
          ? (reqs: AsyncIterable<MessageInitShape<I>>, opts?: CallOptions) => AsyncIterable<MessageShape<O>>
          : never;

/** A typed client for a whole service. */
export type ServiceClient<S extends DescService> = {
  [K in keyof S["method"]]: MethodClient<S["method"][K]>;
} & {
  /** Closes the underlying channel. */
  close(): void;
};
