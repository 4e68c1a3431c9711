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

/**
 * Signs principal tokens, reusing a token for the first half of its lifetime.
 *
 * Why: a service calling others on behalf of the same principal (its own service principal, or
 * the caller of the request it is serving) would otherwise sign on every call; reusing the token
 * also lets the callee's {@link PrincipalVerifier} answer from memory. Every token still has at
 * least half its lifetime left when sent. Keyed by the principal object (a WeakMap: nothing is
 * kept alive by it).
 */
export class PrincipalSigner {
  readonly #tokens = new WeakMap<Principal, Map<number, { token: string; reuseUntil: number }>>();

  constructor(private readonly secret: string) {}

  sign(principal: Principal, ttlMs: number, now = Date.now()): string {
    let byTtl = this.#tokens.get(principal);
    const hit = byTtl?.get(ttlMs);
    if (hit && hit.reuseUntil > now) return hit.token;
    const token = signPrincipal(principal, this.secret, ttlMs, now);
    if (!byTtl) {
      byTtl = new Map();
      this.#tokens.set(principal, byTtl);
    }
    byTtl.set(ttlMs, { token, reuseUntil: now + ttlMs / 2 });
    return token;
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
