import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import {
  Client,
  type ClientDuplexStream,
  type ClientWritableStream,
  credentials,
  type CallOptions as GrpcCallOptions,
  Metadata,
} from "@grpc/grpc-js";
import { currentContext, type Principal } from "../context.js";
import { Code, ServiceError } from "../errors.js";
import { PRINCIPAL_HEADER, PrincipalSigner } from "../principal-token.js";
import { createBreaker } from "../resilience/breaker.js";
import { retry } from "../resilience/retry.js";
import { injectContext } from "../tracing.js";
import { clientCodec } from "./codec.js";
import type { CallOptions, ServiceClient } from "./types.js";

/** How to reach a downstream service and how to behave when it struggles. */
export interface ClientOptions {
  /** One `host:port`, or several: calls are balanced round-robin across them. */
  address: string | string[];
  /** Deadline applied to calls that don't set one (default 10 s). */
  defaultTimeoutMs?: number;
  /** Signs the caller's principal so the callee can trust it (see principal-token.ts). */
  principalSecret?: string;
  /** Principal to send when no request context carries one (e.g. the calling service itself). */
  defaultPrincipal?: Principal;
  /** Retries idempotent unary calls on UNAVAILABLE with full-jitter backoff (default 3 attempts). */
  retry?: { maxAttempts: number; baseMs: number; capMs: number } | false;
  /** Opens after repeated UNAVAILABLE/DEADLINE_EXCEEDED/INTERNAL so callers fail fast (default on). */
  breaker?: { errorThresholdPercentage: number; resetTimeoutMs: number; volumeThreshold: number } | false;
  /** Records one finished call. */
  observe?: (method: string, code: string, seconds: number) => void;
}

const BREAKER_CODES = new Set([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.INTERNAL, Code.UNKNOWN]);

/**
 * A typed client for a protobuf-es service over grpc-js: unary calls return promises, streams
 * are async iterables, every call has a deadline, carries trace context, request/correlation
 * ids and the signed principal, and errors come back as ServiceError with their details.
 */
export function createClient<S extends DescService>(service: S, opts: ClientOptions): ServiceClient<S> {
  const addresses = Array.isArray(opts.address) ? opts.address : [opts.address];
  const target = addresses.length === 1 ? addresses[0]! : `ipv4:${addresses.join(",")}`;
  const grpcClient = new Client(target, credentials.createInsecure(), {
    "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
    "grpc.keepalive_time_ms": 30_000,
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
  });
  const unary = (path: string, method: DescMethod, req: unknown, callOpts: CallOptions | undefined) => {
    const codec = clientCodec(method.input, method.output);
    return new Promise<unknown>((resolve, reject) => {
      const call = grpcClient.makeUnaryRequest(
        path,
        codec.serialize,
        codec.deserialize,
        req,
        metadataFor(opts, callOpts),
        grpcOptions(opts, callOpts),
        (err, res) => (err ? reject(ServiceError.from(err)) : resolve(res)),
      );
      callOpts?.signal?.addEventListener("abort", () => call.cancel(), { once: true });
    });
  };
  const guarded = opts.breaker === false ? unary : guardWithBreaker(service.typeName, unary, opts);

  const client: Record<string, unknown> = { close: () => grpcClient.close() };
  for (const method of service.methods) {
    const path = `/${service.typeName}/${method.name}`;
    const timed = <T>(p: Promise<T>) => observeCall(opts, path, p);
    switch (method.methodKind) {
      case "unary":
        client[method.localName] = (req: unknown, callOpts?: CallOptions) => {
          const once = () => guarded(path, method, req, callOpts);
          const policy = opts.retry ?? { maxAttempts: 3, baseMs: 50, capMs: 1_000 };
          if (policy === false || !isIdempotent(method, req)) return timed(once());
          return timed(
            retry(once, {
              ...policy,
              isRetryable: (e) => e instanceof ServiceError && e.code === Code.UNAVAILABLE,
              ...(callOpts?.signal ? { signal: callOpts.signal } : {}),
            }),
          );
        };
        break;
      case "server_streaming":
        client[method.localName] = (req: unknown, callOpts?: CallOptions) => {
          const codec = clientCodec(method.input, method.output);
          const call = grpcClient.makeServerStreamRequest(
            path,
            codec.serialize,
            codec.deserialize,
            req,
            metadataFor(opts, callOpts, true),
            grpcOptions(opts, callOpts, true),
          );
          return readStream(call, callOpts, () => call.cancel());
        };
        break;
      case "client_streaming":
        client[method.localName] = (reqs: AsyncIterable<unknown>, callOpts?: CallOptions) => {
          const codec = clientCodec(method.input, method.output);
          let call: ClientWritableStream<unknown> | undefined;
          const result = new Promise<unknown>((resolve, reject) => {
            call = grpcClient.makeClientStreamRequest(
              path,
              codec.serialize,
              codec.deserialize,
              metadataFor(opts, callOpts, true),
              // An upload lasts as long as its data: no default deadline, only the caller's.
              grpcOptions(opts, callOpts, true),
              (err, res) => (err ? reject(ServiceError.from(err)) : resolve(res)),
            );
          });
          const stream = call as unknown as ClientWritableStream<unknown>;
          callOpts?.signal?.addEventListener("abort", () => stream.cancel(), { once: true });
          pump(reqs, stream).catch(() => stream.cancel());
          return timed(result);
        };
        break;
      case "bidi_streaming":
        client[method.localName] = (reqs: AsyncIterable<unknown>, callOpts?: CallOptions) => {
          const codec = clientCodec(method.input, method.output);
          const call: ClientDuplexStream<unknown, unknown> = grpcClient.makeBidiStreamRequest(
            path,
            codec.serialize,
            codec.deserialize,
            metadataFor(opts, callOpts, true),
            grpcOptions(opts, callOpts, true),
          );
          pump(reqs, call).catch(() => call.cancel());
          return readStream(call, callOpts, () => call.cancel());
        };
        break;
    }
  }
  return client as ServiceClient<S>;
}

function isIdempotent(method: DescMethod, req: unknown): boolean {
  if (method.idempotency !== MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN) return true;
  if (/^(Get|List|Check|Verify|Query)/.test(method.name)) return true;
  const id = (req as { requestId?: unknown } | null)?.requestId;
  return typeof id === "string" && id.length > 0;
}

function guardWithBreaker(
  name: string,
  fn: (path: string, method: DescMethod, req: unknown, o: CallOptions | undefined) => Promise<unknown>,
  opts: ClientOptions,
) {
  const cfg = opts.breaker || { errorThresholdPercentage: 50, resetTimeoutMs: 5_000, volumeThreshold: 10 };
  const breaker = createBreaker(name, fn, {
    errorThresholdPercentage: cfg.errorThresholdPercentage,
    resetTimeout: cfg.resetTimeoutMs,
    volumeThreshold: cfg.volumeThreshold,
    isFailure: (err: unknown) => err instanceof ServiceError && BREAKER_CODES.has(err.code),
  });
  return (path: string, method: DescMethod, req: unknown, o: CallOptions | undefined) =>
    breaker.fire(path, method, req, o).catch((err: unknown) => {
      throw err instanceof ServiceError
        ? err
        : new ServiceError(Code.UNAVAILABLE, `${name}: ${String(err)}`, [], { cause: err });
    });
}

/** One signer per mesh secret and token lifetime (one secret in production; tests have a few). */
const signers = new Map<string, PrincipalSigner>();
function signerFor(secret: string, ttlMs: number): PrincipalSigner {
  const key = `${ttlMs}:${secret}`;
  let signer = signers.get(key);
  if (!signer) {
    signer = new PrincipalSigner({ secret, ttlMs });
    signers.set(key, signer);
  }
  return signer;
}

function metadataFor(opts: ClientOptions, callOpts: CallOptions | undefined, streaming = false): Metadata {
  const md = new Metadata();
  const ctx = currentContext();
  if (ctx) {
    md.set("x-request-id", ctx.requestId);
    md.set("x-correlation-id", ctx.correlationId);
  }
  for (const [k, v] of Object.entries(injectContext())) md.set(k, v);
  const principal = ctx?.principal ?? opts.defaultPrincipal;
  if (principal && opts.principalSecret) {
    // Long-lived streams outlive a short token; the callee checks it once, at call start.
    md.set(PRINCIPAL_HEADER, signerFor(opts.principalSecret, streaming ? 60_000 : 30_000).sign(principal));
  }
  for (const [k, v] of Object.entries(callOpts?.headers ?? {})) md.set(k, v);
  return md;
}

function grpcOptions(
  opts: ClientOptions,
  callOpts: CallOptions | undefined,
  streaming = false,
): GrpcCallOptions {
  const timeout = callOpts?.timeoutMs ?? (streaming ? undefined : (opts.defaultTimeoutMs ?? 10_000));
  return timeout === undefined ? {} : { deadline: Date.now() + timeout };
}

async function observeCall<T>(opts: ClientOptions, path: string, p: Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    const res = await p;
    opts.observe?.(path, "OK", (performance.now() - started) / 1000);
    return res;
  } catch (err) {
    const e = ServiceError.from(err);
    opts.observe?.(path, Code[e.code] ?? "UNKNOWN", (performance.now() - started) / 1000);
    throw e;
  }
}

async function* readStream(
  call: AsyncIterable<unknown>,
  callOpts: CallOptions | undefined,
  cancel: () => void,
): AsyncGenerator<unknown> {
  callOpts?.signal?.addEventListener("abort", cancel, { once: true });
  let completed = false;
  try {
    for await (const msg of call) yield msg;
    completed = true;
  } catch (err) {
    throw ServiceError.from(err);
  } finally {
    // The consumer stopped early: tell the server instead of leaving the stream open.
    if (!completed) cancel();
  }
}

async function pump(source: AsyncIterable<unknown>, sink: ClientWritableStream<unknown>): Promise<void> {
  for await (const msg of source) {
    if (!sink.write(msg)) await new Promise((r) => sink.once("drain", r));
  }
  sink.end();
}
