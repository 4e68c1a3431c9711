/**
 * The four call kinds, forwarded as bytes. Unary and server-streaming calls carry one request
 * message: it is read first (bounded by GRPC_MAX_MESSAGE_BYTES), decoded as a copy for the
 * authorizer, then sent upstream as the client framed it. Client and bidi streams are admitted
 * at once and their messages stream through. Either way the upstream's headers, messages and
 * status come back unchanged (see ProxiedCall).
 */
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { Code, ServiceError } from "../../../mesh/errors.js";
import type { PublicMethod } from "../routes/route-table.js";
import { FrameMeter, type SingleMessage, singleMessage } from "./frames.js";
import { ProxiedCall, type ProxyContext } from "./proxied-call.js";

/** Forwards one call of a public method through the pipeline. */
export function forwardPublic(
  down: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  route: PublicMethod,
  ctx: ProxyContext,
): void {
  const call = new ProxiedCall(down, headers, route.path, ctx, { pipeline: true });
  const kind = route.method.methodKind;
  const oneRequest = kind === "unary" || kind === "server_streaming";
  const request = oneRequest ? readSingleMessage(down, ctx.maxMessageBytes, route.path) : undefined;
  Promise.resolve(request)
    .then(async (msg) => {
      await call.admit(route, msg);
      call.forward((h) => ctx.upstreams.request(route.upstream, h), msg?.frame);
    })
    .catch((err: unknown) => call.fail(err));
}

/**
 * Reads the request body of a call that carries exactly one message. The body is kept (it is
 * what gets forwarded) but never beyond one message: a declared length above `max` or the start
 * of a second message ends the read at once.
 */
export function readSingleMessage(
  down: ServerHttp2Stream,
  max: number,
  path: string,
): Promise<SingleMessage> {
  return new Promise((resolve, reject) => {
    const meter = new FrameMeter(max);
    const chunks: Buffer[] = [];
    let settled = false;
    const settle = (err: ServiceError | undefined) => {
      if (settled) return;
      settled = true;
      down.off("data", onData);
      down.off("close", onClose);
      if (err) return reject(err);
      try {
        resolve(singleMessage(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), path));
      } catch (e) {
        reject(e);
      }
    };
    const onData = (chunk: Buffer) => {
      const err = meter.push(chunk);
      if (err) return settle(err);
      chunks.push(chunk);
      if (meter.messages > 1 || (meter.messages === 1 && meter.partial)) {
        settle(new ServiceError(Code.UNIMPLEMENTED, `Received a second request message for method ${path}`));
      }
    };
    down.on("data", onData);
    down.once("end", () => settle(undefined));
    // Built only when it happens: an Error per call (its stack trace) is a cost every call would pay.
    const onClose = () => settle(new ServiceError(Code.CANCELLED, "the client cancelled the call"));
    down.once("close", onClose);
  });
}
