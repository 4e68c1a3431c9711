/**
 * The four call kinds, forwarded as raw bytes. Each one: run the pipeline, pick a replica, open
 * the upstream call with the same path, deadline and (filtered) metadata, then relay messages
 * with backpressure both ways, the upstream's headers, and its final status and trailers
 * unchanged. A client cancellation cancels the upstream call.
 */
import type {
  ClientDuplexStream,
  ClientReadableStream,
  ClientWritableStream,
  handleBidiStreamingCall,
  handleClientStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
  ServerDuplexStream,
  ServerReadableStream,
  ServerWritableStream,
  StatusObject,
} from "@grpc/grpc-js";
import { Code } from "../../../mesh/errors.js";
import type { PublicMethod } from "../routes/route-table.js";
import { passThrough } from "../routes/upstreams.js";
import { ProxiedCall, type ProxyContext } from "./proxied-call.js";
import { callUnary } from "./raw-unary.js";

type Raw = Buffer;

export function forwardUnary(route: PublicMethod, ctx: ProxyContext): handleUnaryCall<Raw, Raw> {
  return (call, callback) => {
    const p = new ProxiedCall(call, route, ctx);
    p.admit(route, call.request)
      .then(() => {
        if (call.cancelled) return p.end(Code.CANCELLED);
        const up = callUnary(
          ctx.upstreams.pick(route.upstream),
          route.path,
          call.request,
          p.upstreamMetadata(),
          p.upstreamOptions(),
          {
            onMetadata: (md) => p.sendHeaders(md),
            // The status carries the trailers, success or not.
            onStatus: (status, response) => {
              const relayed = p.relay(status);
              if (status.code === Code.OK) callback(null, response ?? Buffer.alloc(0), relayed.metadata);
              else callback(relayed);
            },
          },
        );
        call.on("cancelled", () => up.cancel());
      })
      .catch((err: unknown) => callback(p.fail(err)));
  };
}

export function forwardServerStream(
  route: PublicMethod,
  ctx: ProxyContext,
): handleServerStreamingCall<Raw, Raw> {
  return (call) => {
    const p = new ProxiedCall(call, route, ctx);
    p.admit(route, call.request)
      .then(() => {
        if (call.cancelled) return p.end(Code.CANCELLED);
        const up = ctx.upstreams
          .pick(route.upstream)
          .makeServerStreamRequest(
            route.path,
            passThrough,
            passThrough,
            call.request,
            p.upstreamMetadata(),
            p.upstreamOptions(),
          );
        relayResponses(up, call, p);
      })
      .catch((err: unknown) => call.emit("error", p.fail(err)));
  };
}

export function forwardClientStream(
  route: PublicMethod,
  ctx: ProxyContext,
): handleClientStreamingCall<Raw, Raw> {
  return (call, callback) => {
    const p = new ProxiedCall(call, route, ctx);
    p.admit(route, undefined)
      .then(() => {
        if (call.cancelled) return p.end(Code.CANCELLED);
        let response: Raw | undefined;
        const up = ctx.upstreams
          .pick(route.upstream)
          .makeClientStreamRequest(
            route.path,
            passThrough,
            passThrough,
            p.upstreamMetadata(),
            p.upstreamOptions(),
            (_err, res) => {
              response = res;
            },
          );
        up.on("metadata", (md) => p.sendHeaders(md));
        const stopRequests = relayRequests(call, up);
        up.on("status", (status: StatusObject) => {
          stopRequests();
          const relayed = p.relay(status);
          if (status.code === Code.OK) callback(null, response ?? Buffer.alloc(0), relayed.metadata);
          else callback(relayed);
        });
        call.on("cancelled", () => up.cancel());
      })
      .catch((err: unknown) => callback(p.fail(err)));
  };
}

export function forwardBidiStream(route: PublicMethod, ctx: ProxyContext): handleBidiStreamingCall<Raw, Raw> {
  return (call) => {
    const p = new ProxiedCall(call, route, ctx);
    p.admit(route, undefined)
      .then(() => {
        if (call.cancelled) return p.end(Code.CANCELLED);
        const up = ctx.upstreams
          .pick(route.upstream)
          .makeBidiStreamRequest(
            route.path,
            passThrough,
            passThrough,
            p.upstreamMetadata(),
            p.upstreamOptions(),
          );
        const stopRequests = relayRequests(call, up);
        up.on("status", stopRequests);
        relayResponses(up, call, p);
      })
      .catch((err: unknown) => call.emit("error", p.fail(err)));
  };
}

/** Client → upstream, pausing the client while the upstream's buffer is full. */
function relayRequests(
  down: ServerReadableStream<Raw, Raw> | ServerDuplexStream<Raw, Raw>,
  up: ClientWritableStream<Raw> | ClientDuplexStream<Raw, Raw>,
): () => void {
  let open = true;
  const onData = (buf: Raw) => {
    if (!open) return;
    if (!up.write(buf)) {
      down.pause();
      up.once("drain", () => down.resume());
    }
  };
  down.on("data", onData);
  down.once("end", () => {
    if (open) up.end();
  });
  return () => {
    open = false;
    down.off("data", onData);
    down.resume();
  };
}

/**
 * Upstream → client. grpc-js reports the status as soon as it arrives, possibly while messages
 * are still buffered behind a paused stream, so the call is finished only once both the status
 * has arrived and every message has been written.
 */
function relayResponses(
  up: ClientReadableStream<Raw> | ClientDuplexStream<Raw, Raw>,
  down: ServerWritableStream<Raw, Raw> | ServerDuplexStream<Raw, Raw>,
  p: ProxiedCall,
): void {
  let status: StatusObject | undefined;
  let drained = false;
  const finish = () => {
    if (!status || !drained) return;
    const relayed = p.relay(status);
    if (status.code === Code.OK) down.end(relayed.metadata);
    else down.emit("error", relayed);
  };
  up.on("metadata", (md) => p.sendHeaders(md));
  up.on("data", (buf: Raw) => {
    p.sendHeaders();
    if (!down.write(buf)) {
      up.pause();
      down.once("drain", () => up.resume());
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
  // The status event carries the error; without a listener an 'error' event would throw.
  up.on("error", () => {});
  down.on("cancelled", () => {
    up.cancel();
    up.resume();
    p.end(Code.CANCELLED);
  });
}
