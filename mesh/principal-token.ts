import { createHmac, timingSafeEqual } from "node:crypto";
import type { Principal } from "./context.js";

/** Metadata key by which the gateway forwards the authenticated principal to services. */
export const PRINCIPAL_HEADER = "x-codex-principal";

/**
 * The gateway authenticates callers once; services must be able to trust who it says the
 * caller is without re-checking credentials. The principal travels as
 * `base64url(json).base64url(hmac-sha256)` signed with a secret only the mesh shares, so a
 * client that reaches a service directly cannot forge one. Tokens are short-lived.
 */
export function signPrincipal(
  principal: Principal,
  secret: string,
  ttlMs = 60_000,
  now = Date.now(),
): string {
  const body = Buffer.from(JSON.stringify({ p: principal, exp: now + ttlMs })).toString("base64url");
  return `${body}.${mac(body, secret)}`;
}

/** Options of {@link PrincipalSigner}. */
export interface PrincipalSignerOptions {
  readonly secret: string;
  /** Lifetime of a token when signed. */
  readonly ttlMs: number;
  /** Distinct principals remembered (least recently used dropped first). */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface Signed {
  readonly token: string;
  /** After this instant the token is signed again. */
  readonly renewAt: number;
}

/**
 * Signs principals, reusing a token for the same principal while it still has at least half
 * of its lifetime left. Used by the gateway for the principals it forwards and by mesh clients.
 *
 * Why: a client makes many calls as one principal, and signing (JSON, base64url, HMAC-SHA256)
 * was the largest share of the gateway's own work per call; reusing the token also lets the
 * callee's {@link PrincipalVerifier} answer from memory. The cache is keyed by the principal's
 * whole JSON, so a principal that changes in any member (a role, its memberships, a truncation
 * flag) is signed afresh at once: nothing a service trusts can be stale. A reused token is never
 * sent with less than `ttlMs / 2` left, so its lifetime as a service sees it is between half and
 * all of `ttlMs` — never longer than before.
 */
export class PrincipalSigner {
  private readonly cache = new Map<string, Signed>();
  private readonly maxEntries: number;

  constructor(private readonly opts: PrincipalSignerOptions) {
    this.maxEntries = opts.maxEntries ?? 1_000;
  }

  sign(principal: Principal): string {
    const key = JSON.stringify(principal);
    const now = this.opts.now ? this.opts.now() : Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.renewAt > now) return hit.token;
    const token = signPrincipal(principal, this.opts.secret, this.opts.ttlMs, now);
    // Re-inserting moves the key to the end: Map order is then least recently signed first.
    this.cache.delete(key);
    this.cache.set(key, { token, renewAt: now + Math.floor(this.opts.ttlMs / 2) });
    if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
    return token;
  }

  /** Principals remembered (tests). */
  get size(): number {
    return this.cache.size;
  }
}

/**
 * Verifies principal tokens, remembering the valid ones until they expire.
 *
 * Why: a client reuses one signed token for many calls (the SDK per stream, the mesh client per
 * principal), and every call would otherwise pay an HMAC and a JSON parse. A token is immutable
 * and its verdict under one secret cannot change before its expiry, so a remembered verdict is
 * exactly what a fresh check would say; forged or malformed tokens are never remembered. Bounded:
 * the oldest entry goes when `max` is reached.
 */
export class PrincipalVerifier {
  readonly #valid = new Map<string, { principal: Principal; exp: number }>();

  constructor(
    private readonly secret: string,
    private readonly max = 4_096,
  ) {}

  verify(token: string, now = Date.now()): Principal | undefined {
    const hit = this.#valid.get(token);
    if (hit) {
      if (hit.exp >= now) return hit.principal;
      this.#valid.delete(token);
      return undefined;
    }
    const checked = checkPrincipal(token, this.secret, now);
    if (!checked) return undefined;
    if (this.#valid.size >= this.max) {
      const oldest = this.#valid.keys().next().value;
      if (oldest !== undefined) this.#valid.delete(oldest);
    }
    this.#valid.set(token, checked);
    return checked.principal;
  }
}

/** Verifies a principal token; returns undefined when it is forged, malformed or expired. */
export function verifyPrincipal(token: string, secret: string, now = Date.now()): Principal | undefined {
  return checkPrincipal(token, secret, now)?.principal;
}

function checkPrincipal(
  token: string,
  secret: string,
  now: number,
): { principal: Principal; exp: number } | undefined {
  const dot = token.indexOf(".");
  if (dot <= 0 || token.length > 16_384) return undefined;
  const body = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1), "base64url");
  const expected = Buffer.from(mac(body, secret), "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as {
      p?: Principal;
      exp?: number;
    };
    if (!parsed.p || typeof parsed.exp !== "number" || parsed.exp < now) return undefined;
    if (typeof parsed.p.id !== "string" || typeof parsed.p.type !== "string") return undefined;
    return { principal: parsed.p, exp: parsed.exp };
  } catch {
    return undefined;
  }
}

function mac(body: string, secret: string): string {
  return createHmac("sha256", secret).update(body).digest("base64url");
}
