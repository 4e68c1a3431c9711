/**
 * Per-request context carried implicitly through async calls.
 *
 * Why AsyncLocalStorage: request id, correlation id, caller identity and deadline are needed deep
 * inside handlers, stores and loggers. Threading them through every signature couples pure domain
 * code to transport concerns; AsyncLocalStorage gives each inbound RPC / consumed message its own
 * scope that follows awaits, timers and callbacks without the code asking for it.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";

/** Who is calling. `projectRoles` maps project id to role name for authorisation checks. */
export type Principal = {
  type: "user" | "api_key" | "agent" | "service";
  id: string;
  displayName?: string;
  projectRoles?: Record<string, string>;
};

/**
 * What every log line, outgoing call and emitted event of one request needs to know.
 * `requestId` is unique per hop; `correlationId` is stable across the whole user-visible
 * operation (RPC chain, saga, events); `deadline` is epoch milliseconds.
 */
export type RequestContext = {
  requestId: string;
  correlationId: string;
  principal?: Principal;
  deadline?: number;
};

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs `fn` with `ctx` as the current request context; nested calls replace it for their scope. */
export function runWithContext<T>(ctx: RequestContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/** The context of the request being served, or `undefined` outside any request (start-up, timers). */
export function currentContext(): RequestContext | undefined {
  return storage.getStore();
}

/**
 * Builds a context for a new inbound request. A missing correlation id starts a new operation:
 * it then equals the request id so the first hop of a chain is still searchable by either.
 */
export function createRequestContext(init: Partial<RequestContext> = {}): RequestContext {
  const requestId = init.requestId || randomUUID();
  const ctx: RequestContext = { requestId, correlationId: init.correlationId || requestId };
  if (init.principal !== undefined) ctx.principal = init.principal;
  if (init.deadline !== undefined) ctx.deadline = init.deadline;
  return ctx;
}

/**
 * Milliseconds left before the current request's deadline (never negative), or `undefined` when
 * there is no deadline. Outgoing calls use it so a downstream never works past what the caller waits.
 */
export function remainingMs(ctx: RequestContext | undefined = currentContext(), now = Date.now()) {
  if (ctx?.deadline === undefined) return undefined;
  return Math.max(0, ctx.deadline - now);
}
