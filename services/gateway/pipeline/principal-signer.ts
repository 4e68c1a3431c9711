import type { Principal } from "../../../mesh/context.js";
import { signPrincipal } from "../../../mesh/principal-token.js";

/** Options of the signer. */
export interface PrincipalSignerOptions {
  readonly secret: string;
  /** Lifetime of a token when signed (GATEWAY_PRINCIPAL_TTL_MS). */
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
 * Signs the principals the gateway forwards, reusing a token for the same principal while it
 * still has at least half of its lifetime left.
 *
 * Why: a client makes many calls as one principal, and signing (JSON, base64url, HMAC-SHA256)
 * was the largest share of the gateway's own work per call. The cache is keyed by the
 * principal's whole JSON, so a principal that changes in any member (a role, its memberships, a
 * truncation flag) is signed afresh at once: nothing a service trusts can be stale. A reused
 * token is never sent with less than `ttlMs / 2` left (30 s of the default 60 s), so its
 * lifetime as a service sees it is between half and all of `ttlMs` — never longer than before.
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
