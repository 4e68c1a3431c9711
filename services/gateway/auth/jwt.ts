/**
 * Bearer JWT verification: signature, algorithm, issuer, audience, expiry, not-before and
 * lifetime, then the identity the token asserts.
 *
 * The algorithm list is explicit and checked before any key is chosen: `none` is never
 * accepted, HS256 only when a shared secret is configured, and each algorithm family has its
 * own key source (the secret for HS256, public keys for the others), so a token cannot make
 * the gateway verify an HMAC with a public key (the classic algorithm-confusion attack).
 */
import { createHash } from "node:crypto";
import {
  decodeProtectedHeader,
  errors,
  type CryptoKey as JoseCryptoKey,
  type JWTPayload,
  type JWTVerifyResult,
  jwtVerify,
  type KeyObject,
} from "jose";
import { unauthenticated } from "../../../mesh/errors.js";
import type { KeyLookup, KeyStore } from "./jwt-keys.js";

/** What a verified token says about its bearer. */
export interface JwtIdentity {
  subject: string;
  type: "user" | "agent";
  displayName?: string;
  platformAdmin: boolean;
  /** `exp`, epoch milliseconds. */
  expiresAt: number;
  claims: JWTPayload;
}

export interface JwtVerifierOptions {
  issuer: string;
  audience: readonly string[];
  /** Asymmetric algorithms accepted. */
  algorithms: readonly string[];
  keys: KeyStore;
  /** Enables HS256 with this secret. */
  hs256Secret?: string;
  clockToleranceMs: number;
  maxLifetimeMs: number;
  adminClaim: string;
  adminValue: string;
  principalTypeClaim: string;
  now?: () => number;
  /** Verified tokens remembered (see {@link JwtVerifier}); 0 verifies every call. Default 10,000. */
  cacheSize?: number;
}

/** A token verified before, remembered until it expires or its key set changes. */
interface Verified {
  readonly identity: JwtIdentity;
  /** Epoch ms from which the token is expired even with the clock tolerance. */
  readonly until: number;
  /** The key set that verified it (undefined: HS256 with the fixed secret). */
  readonly keys: KeyLookup | undefined;
}

/** Principal ids as the project service accepts them (member.proto). */
const SUBJECT = /^[A-Za-z0-9._@|:+-]{1,256}$/;
const MAX_TOKEN_LENGTH = 8_192;

/**
 * Verifies bearer JWTs; every refusal is UNAUTHENTICATED with a reason safe to show.
 *
 * A client sends the same token on every call until it expires, and checking its signature
 * (ES256/RS256/EdDSA) is the costliest step of authentication, so tokens that passed every check
 * are remembered by their SHA-256, in a bounded LRU (`cacheSize`), until they expire (`exp` plus
 * the clock tolerance, exactly when a fresh check would refuse them) — and only while the key
 * set that verified them is still the current one: when the JWKS file changes (a key retired
 * after a compromise), every token is checked again on its next use. What cannot change for a
 * given token (signature, issuer, audience, lifetime, `nbf` and `iat` once passed) is therefore
 * never stale; refusals are never remembered. There is no JWT revocation list: tokens are
 * short-lived (JWT_MAX_LIFETIME) by design, and a cached token stops working when it expires.
 */
export class JwtVerifier {
  private readonly secret: Uint8Array | undefined;
  private readonly allowed: Set<string>;
  private readonly verified = new Map<string, Verified>();
  private readonly cacheSize: number;

  constructor(private readonly opts: JwtVerifierOptions) {
    this.secret = opts.hs256Secret ? new TextEncoder().encode(opts.hs256Secret) : undefined;
    this.allowed = new Set(opts.algorithms.filter((a) => a !== "none" && !a.startsWith("HS")));
    if (this.secret) this.allowed.add("HS256");
    this.cacheSize = opts.cacheSize ?? 10_000;
  }

  async verify(token: string): Promise<JwtIdentity> {
    if (token.length > MAX_TOKEN_LENGTH) throw unauthenticated("bearer token too long");
    if (this.cacheSize === 0) return (await this.check(token)).identity;
    const key = createHash("sha256").update(token).digest("base64url");
    const hit = this.verified.get(key);
    if (hit) {
      const current = hit.keys === undefined ? undefined : await this.opts.keys.current();
      if (hit.until > this.now() && hit.keys === current) {
        // Least recently used first: a hit moves to the end.
        this.verified.delete(key);
        this.verified.set(key, hit);
        return hit.identity;
      }
      this.verified.delete(key);
    }
    const fresh = await this.check(token);
    const until = fresh.identity.expiresAt + Math.floor(this.opts.clockToleranceMs / 1000) * 1000;
    this.verified.set(key, { identity: fresh.identity, until, keys: fresh.keys });
    if (this.verified.size > this.cacheSize)
      this.verified.delete(this.verified.keys().next().value as string);
    return fresh.identity;
  }

  /** Tokens remembered as verified (tests). */
  get cached(): number {
    return this.verified.size;
  }

  /** Every check, without the cache: the identity and the key set that verified it. */
  private async check(token: string): Promise<{ identity: JwtIdentity; keys: KeyLookup | undefined }> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw unauthenticated("malformed bearer token");
    }
    if (alg === undefined || !this.allowed.has(alg)) {
      throw unauthenticated(`token algorithm ${JSON.stringify(alg ?? "")} is not accepted`);
    }
    const result = await this.checkSignature(token, alg);
    return { identity: this.identity(result.payload), keys: result.keys };
  }

  private async checkSignature(
    token: string,
    alg: string,
  ): Promise<JWTVerifyResult & { keys: KeyLookup | undefined }> {
    const options = {
      issuer: this.opts.issuer,
      audience: [...this.opts.audience],
      algorithms: [alg],
      clockTolerance: Math.floor(this.opts.clockToleranceMs / 1000),
      requiredClaims: ["exp", "sub"],
      currentDate: new Date(this.now()),
    };
    try {
      if (alg === "HS256") {
        return { ...(await jwtVerify(token, this.secret as Uint8Array, options)), keys: undefined };
      }
      const lookup = await this.opts.keys.current();
      if (!lookup) throw unauthenticated("no key configured for this token");
      try {
        return { ...(await jwtVerify(token, lookup, options)), keys: lookup };
      } catch (err) {
        if (err instanceof errors.JWKSNoMatchingKey) {
          // Maybe the issuer rotated: look at the key file again before refusing.
          const fresh = await this.opts.keys.current(true);
          if (fresh && fresh !== lookup) return { ...(await jwtVerify(token, fresh, options)), keys: fresh };
        }
        if (err instanceof errors.JWKSMultipleMatchingKeys) {
          return { ...(await tryEach(token, err, options)), keys: lookup };
        }
        throw err;
      }
    } catch (err) {
      throw refusal(err);
    }
  }

  private identity(claims: JWTPayload): JwtIdentity {
    const now = this.now();
    const tolerance = this.opts.clockToleranceMs;
    const exp = (claims.exp as number) * 1000;
    if (typeof claims.iat === "number" && claims.iat * 1000 > now + tolerance) {
      throw unauthenticated("token issued in the future");
    }
    const issuedAt = typeof claims.iat === "number" ? claims.iat * 1000 : now;
    if (exp - issuedAt > this.opts.maxLifetimeMs + tolerance) {
      throw unauthenticated(`token lifetime exceeds ${Math.round(this.opts.maxLifetimeMs / 1000)} s`);
    }
    const sub = claims.sub ?? "";
    if (!SUBJECT.test(sub)) throw unauthenticated("token subject is not a valid principal id");
    const type = claims[this.opts.principalTypeClaim] === "agent" ? "agent" : "user";
    const identity: JwtIdentity = {
      subject: sub,
      type,
      platformAdmin: type === "user" && this.isAdmin(claims[this.opts.adminClaim]),
      expiresAt: exp,
      claims,
    };
    if (typeof claims.name === "string" && claims.name !== "")
      identity.displayName = claims.name.slice(0, 200);
    return identity;
  }

  private isAdmin(value: unknown): boolean {
    const want = this.opts.adminValue;
    if (Array.isArray(value)) return value.some((v) => String(v) === want);
    if (typeof value === "string" || typeof value === "boolean") return String(value) === want;
    return false;
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }
}

/** Tokens without a `kid` when several keys fit: try each candidate (jose leaves this to us). */
async function tryEach(
  token: string,
  err: errors.JWKSMultipleMatchingKeys,
  options: Parameters<typeof jwtVerify>[2],
): Promise<JWTVerifyResult> {
  let last: unknown = err;
  for await (const key of err as unknown as AsyncIterable<KeyObject | JoseCryptoKey>) {
    try {
      return await jwtVerify(token, key, options);
    } catch (e) {
      last = e;
      if (!(e instanceof errors.JWSSignatureVerificationFailed)) break;
    }
  }
  throw last;
}

/** Maps jose's failures to an UNAUTHENTICATED message that names the check, never a key. */
function refusal(err: unknown): Error {
  if (err instanceof errors.JWTExpired) return unauthenticated("token expired");
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "nbf") return unauthenticated("token not yet valid");
    if (err.claim === "iss") return unauthenticated("token issuer not accepted");
    if (err.claim === "aud") return unauthenticated("token audience not accepted");
    return unauthenticated(`token claim ${err.claim} invalid`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return unauthenticated("token signature invalid");
  if (err instanceof errors.JWKSNoMatchingKey) return unauthenticated("token signed with an unknown key");
  if (err instanceof errors.JOSEAlgNotAllowed) return unauthenticated("token algorithm not accepted");
  if (err instanceof errors.JOSEError) return unauthenticated("invalid bearer token");
  if (err instanceof Error && err.name === "ServiceError") return err;
  return unauthenticated("invalid bearer token");
}
