/**
 * Test helpers: a throw-away token issuer with a freshly generated key pair, so tests mint
 * real signed JWTs instead of mocking verification. Never imported by production code.
 */
import { randomUUID } from "node:crypto";
import {
  exportJWK,
  generateKeyPair,
  type CryptoKey as JoseCryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  SignJWT,
} from "jose";

export const TEST_ISSUER = "https://issuer.test";
export const TEST_AUDIENCE = "codex-orchestrator";

/** How to mint one token; times are epoch seconds, defaults give a valid 5-minute token. */
export interface MintOptions {
  iat?: number;
  exp?: number;
  nbf?: number;
  issuer?: string;
  audience?: string | string[];
  /** Extra protected header members (e.g. a different `kid`). */
  header?: Record<string, unknown>;
  /** Omit these registered claims entirely. */
  omit?: ("iat" | "exp" | "sub")[];
}

export interface TestIssuer {
  readonly alg: "ES256" | "RS256" | "EdDSA";
  readonly kid: string;
  readonly publicJwk: JWK;
  /** The public key as a JWKS document. */
  jwks(): JSONWebKeySet;
  /** Gateway settings accepting this issuer's tokens (keys inline). */
  env(extra?: Record<string, string>): Record<string, string>;
  /** Signs `claims` (sub required unless omitted). */
  mint(claims: JWTPayload, opts?: MintOptions): Promise<string>;
}

/** Creates an issuer signing with a new key pair of `alg`. */
export async function createTestIssuer(
  alg: "ES256" | "RS256" | "EdDSA" = "ES256",
  kid = `test-${randomUUID().slice(0, 8)}`,
): Promise<TestIssuer> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return {
    alg,
    kid,
    publicJwk,
    jwks: () => ({ keys: [publicJwk] }),
    env: (extra = {}) => ({
      JWT_ISSUER: TEST_ISSUER,
      JWT_AUDIENCE: TEST_AUDIENCE,
      JWT_PUBLIC_KEYS: JSON.stringify({ keys: [publicJwk] }),
      ...extra,
    }),
    mint: (claims, opts = {}) => sign(claims, opts, { alg, kid, ...(opts.header ?? {}) }, privateKey),
  };
}

/** Signs with a shared HS256 secret. */
export function mintHs256(secret: string, claims: JWTPayload, opts: MintOptions = {}): Promise<string> {
  return sign(claims, opts, { alg: "HS256", ...(opts.header ?? {}) }, new TextEncoder().encode(secret));
}

/** An unsigned token (`alg: none`), which must always be refused. */
export function mintUnsigned(claims: JWTPayload, opts: MintOptions = {}): string {
  const header = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
  const body = Buffer.from(JSON.stringify(payload(claims, opts))).toString("base64url");
  return `${header}.${body}.`;
}

function payload(claims: JWTPayload, opts: MintOptions): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  const out: JWTPayload = {
    iss: opts.issuer ?? TEST_ISSUER,
    aud: opts.audience ?? TEST_AUDIENCE,
    iat: opts.iat ?? now,
    exp: opts.exp ?? now + 300,
    ...claims,
  };
  if (opts.nbf !== undefined) out.nbf = opts.nbf;
  for (const k of opts.omit ?? []) delete out[k];
  return out;
}

async function sign(
  claims: JWTPayload,
  opts: MintOptions,
  header: Record<string, unknown>,
  key: JoseCryptoKey | Uint8Array,
): Promise<string> {
  return new SignJWT(payload(claims, opts)).setProtectedHeader(header as { alg: string }).sign(key);
}
