import { randomUUID } from "node:crypto";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  Metadata,
  type MethodDefinition,
  type ServerDuplexStream,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type sendUnaryData,
  type UntypedHandleCall,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { SpanKind } from "@opentelemetry/api";
import { type Principal, runWithContext } from "../context.js";
import { Code, invalidArgument, ServiceError, statusMetadata, unauthenticated } from "../errors.js";
import type { Logger } from "../logging.js";
import { PRINCIPAL_HEADER, PrincipalVerifier } from "../principal-token.js";
import { extractContext, withSpan } from "../tracing.js";
import { MalformedMessage, serverCodec } from "./codec.js";
import type { CallContext, ServiceImpl } from "./types.js";

/** What the adapter needs from its host server: logging, metrics and the mesh secret. */
export interface AdapterHooks {
  logger: Logger;
  observe(method: string, code: string, seconds: number): void;
  /** Secret verifying principals forwarded by the gateway; undefined refuses every principal header. */
  principalSecret: string | undefined;
}

type AnyCall =
  | ServerUnaryCall<unknown, unknown>
  | ServerReadableStream<unknown, unknown>
  | ServerWritableStream<unknown, unknown>
  | ServerDuplexStream<unknown, unknown>;

type Handler = (input: unknown, ctx: CallContext) => unknown;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The abort reason of a call the client cancelled, built once: grpc-js reports "cancelled" for
 * many calls that already ended too (the client resets the stream after the trailers), and a
 * fresh error with its stack for each was 0.7% of the agent manager at 100 runs/s.
 */
const CANCELLED_BY_CLIENT = new ServiceError(Code.CANCELLED, "call cancelled by client");

/**
 * Turns a protobuf-es service descriptor and a typed async implementation into what grpc-js
 * serves. Every call goes through one boundary that sets up the request context, the server
 * span and metrics, and maps any thrown error to a gRPC status with google.rpc details.
 */
export function adaptService<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  hooks: AdapterHooks,
): { definition: ServiceDefinition; implementation: UntypedServiceImplementation } {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  const implementation: UntypedServiceImplementation = {};
  const verifier = hooks.principalSecret ? new PrincipalVerifier(hooks.principalSecret) : undefined;
  for (const method of service.methods) {
    const handler = (impl as Record<string, Handler | undefined>)[method.localName];
    if (typeof handler !== "function") throw new Error(`${service.typeName}: no handler for ${method.name}`);
    const input = serverCodec(method.input);
    const output = serverCodec(method.output);
    definition[method.name] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: input.serialize,
      requestDeserialize: input.deserialize,
      responseSerialize: output.serialize,
      responseDeserialize: output.deserialize,
      originalName: method.localName,
    };
    implementation[method.name] = wrap(method, handler.bind(impl), hooks, verifier);
  }
  return { definition: definition as ServiceDefinition, implementation };
}

function wrap(
  method: DescMethod,
  handler: Handler,
  hooks: AdapterHooks,
  verifier: PrincipalVerifier | undefined,
): UntypedHandleCall {
  const path = `/${method.parent.typeName}/${method.name}`;
  return ((call: AnyCall, callback?: sendUnaryData<unknown>) => {
    const started = process.hrtime.bigint();
    const abort = new AbortController();
    (call as NodeJS.EventEmitter).on("cancelled", () => abort.abort(CANCELLED_BY_CLIENT));
    let finished = false;
    const finish = (err: unknown, response?: unknown) => {
      if (finished) return;
      finished = true;
      const error = err === undefined ? undefined : ServiceError.from(err);
      if (error?.code === Code.INTERNAL) {
        hooks.logger.error({ err: error.cause ?? error, method: path }, "unhandled error in handler");
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      hooks.observe(path, Code[error?.code ?? Code.OK] ?? "UNKNOWN", seconds);
      if (callback) {
        if (error) callback(toStatus(error));
        else callback(null, response);
      } else if (error) {
        (call as ServerWritableStream<unknown, unknown>).emit("error", toStatus(error));
      } else {
        (call as ServerWritableStream<unknown, unknown>).end();
      }
    };

    let ctx: CallContext;
    try {
      ctx = callContext(path, call, abort.signal, verifier);
    } catch (err) {
      finish(err);
      return;
    }
    const headers = new Metadata();
    headers.set("x-request-id", ctx.requestId);
    call.sendMetadata(headers);

    const parent = extractContext(ctx.metadata.getMap() as Record<string, string>);
    const run = () =>
      withSpan(
        path,
        { kind: SpanKind.SERVER, parent, attributes: { "rpc.system": "grpc", "rpc.method": path } },
        () => execute(method, handler, call, ctx),
      );
    runWithContext(
      { requestId: ctx.requestId, correlationId: ctx.correlationId, ...optionalPrincipal(ctx.principal) },
      run,
    ).then(
      (response) => finish(undefined, response),
      (err: unknown) => finish(err),
    );
  }) as UntypedHandleCall;
}

async function execute(
  method: DescMethod,
  handler: Handler,
  call: AnyCall,
  ctx: CallContext,
): Promise<unknown> {
  switch (method.methodKind) {
    case "unary":
      return handler(decoded((call as ServerUnaryCall<unknown, unknown>).request), ctx);
    case "server_streaming": {
      const req = decoded((call as ServerWritableStream<unknown, unknown>).request);
      await writeAll(
        call as ServerWritableStream<unknown, unknown>,
        handler(req, ctx) as AsyncIterable<unknown>,
        ctx,
      );
      return undefined;
    }
    case "client_streaming":
      return handler(readAll(call as ServerReadableStream<unknown, unknown>), ctx);
    case "bidi_streaming": {
      const duplex = call as ServerDuplexStream<unknown, unknown>;
      await writeAll(
        duplex,
        handler(
          readAll(duplex as unknown as ServerReadableStream<unknown, unknown>),
          ctx,
        ) as AsyncIterable<unknown>,
        ctx,
      );
      return undefined;
    }
  }
}

function decoded(msg: unknown): unknown {
  if (msg instanceof MalformedMessage) {
    throw invalidArgument(`malformed ${msg.typeName}`, [{ field: "", description: msg.reason }]);
  }
  return msg;
}

/**
 * Reads a request stream as an async iterable of decoded messages, pausing the stream while
 * the consumer is busy. Node's Readable iterator is not used: it destroys the call when the
 * loop ends or a read fails, which for a bidi call kills the response side too, and can drop
 * the status the handler is about to send.
 */
async function* readAll(stream: ServerReadableStream<unknown, unknown>): AsyncIterable<unknown> {
  const buffered: unknown[] = [];
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (msg: unknown) => {
    buffered.push(msg);
    if (buffered.length >= 16) stream.pause();
    notify();
  };
  const onEnd = () => {
    ended = true;
    notify();
  };
  const onError = (err: unknown) => {
    failure = err;
    ended = true;
    notify();
  };
  stream.on("data", onData);
  stream.on("end", onEnd);
  stream.on("error", onError);
  try {
    for (;;) {
      if (buffered.length > 0) {
        const msg = buffered.shift();
        if (buffered.length < 4 && stream.isPaused()) stream.resume();
        yield decoded(msg);
        continue;
      }
      if (ended) {
        if (failure !== undefined) throw ServiceError.from(failure);
        return;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    stream.off("data", onData);
    stream.off("end", onEnd);
    stream.off("error", onError);
  }
}

/** Writes a response stream honouring backpressure; stops when the client goes away. */
async function writeAll(
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
  source: AsyncIterable<unknown>,
  ctx: CallContext,
): Promise<void> {
  for await (const msg of source) {
    if (ctx.signal.aborted) return;
    if (!call.write(msg)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          call.off("drain", done);
          ctx.signal.removeEventListener("abort", done);
          resolve();
        };
        call.on("drain", done);
        ctx.signal.addEventListener("abort", done);
      });
    }
  }
}

function callContext(
  path: string,
  call: AnyCall,
  signal: AbortSignal,
  verifier: PrincipalVerifier | undefined,
): CallContext {
  const md = call.metadata;
  const given = firstString(md, "x-request-id");
  const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
  const corr = firstString(md, "x-correlation-id");
  const correlationId = corr && REQUEST_ID.test(corr) ? corr : requestId;
  const token = firstString(md, PRINCIPAL_HEADER);
  let principal: Principal | undefined;
  if (token !== undefined) {
    principal = verifier?.verify(token);
    if (!principal) throw unauthenticated("invalid or expired principal token");
  }
  const deadline = call.getDeadline();
  return {
    method: path,
    metadata: md,
    signal,
    deadline:
      deadline instanceof Date ? deadline : Number.isFinite(deadline) ? new Date(deadline) : undefined,
    requestId,
    correlationId,
    principal,
    peer: call.getPeer(),
  };
}

function firstString(md: Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === "string" ? v : undefined;
}

function optionalPrincipal(p: Principal | undefined): { principal?: Principal } {
  return p ? { principal: p } : {};
}

function toStatus(err: ServiceError) {
  return { code: err.code, details: err.message, metadata: statusMetadata(err) };
}
