/**
 * Where the JWT verification keys come from: keys written into the configuration (PEM blocks,
 * a JWK or a JWKS document) and/or a JWKS file mounted in the pod, re-read when it changes so
 * the issuer can rotate keys without a gateway restart.
 *
 * Why a local file rather than fetching the issuer's JWKS URL: the gateway must not depend on
 * the identity provider being reachable to serve traffic, and the machines here have no route
 * to one. A sidecar or a Kubernetes Secret keeps the file current.
 */
import { createPublicKey } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { createLocalJWKSet, type JSONWebKeySet, type JWK } from "jose";

/** A JWKS lookup as jose's createLocalJWKSet returns it. */
export type KeyLookup = ReturnType<typeof createLocalJWKSet>;

/** Reports problems reading the key file (the previous keys stay in use). */
export type KeyWarning = (message: string, err?: unknown) => void;

const PEM_BLOCK = /-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g;

/**
 * Parses configured keys: JSON (a JWKS `{keys: [...]}` or a single JWK) or one or more PEM
 * blocks (SPKI public keys or certificates). Only public keys are kept: a private key given
 * by mistake is reduced to its public half, and symmetric (`oct`) keys are refused because
 * HS256 has its own setting.
 * @throws Error naming what is wrong, at start-up.
 */
export function parseConfiguredKeys(raw: string): JWK[] {
  const text = raw.trim();
  if (text.startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error("JWT_PUBLIC_KEYS: not valid JSON");
    }
    const keys = isJwks(parsed) ? parsed.keys : [parsed as JWK];
    return keys.map((k, i) => publicJwk(k, `JWT_PUBLIC_KEYS key ${i}`));
  }
  const blocks = text.match(PEM_BLOCK);
  if (!blocks) throw new Error("JWT_PUBLIC_KEYS: expected PEM block(s), a JWK or a JWKS document");
  return blocks.map((pem, i) => {
    try {
      const jwk = createPublicKey(pem).export({ format: "jwk" }) as JWK;
      return withAlg({ ...jwk, kid: jwk.kid ?? `configured-${i}` });
    } catch (err) {
      throw new Error(`JWT_PUBLIC_KEYS: PEM block ${i} is not a public key`, { cause: err });
    }
  });
}

function isJwks(v: unknown): v is JSONWebKeySet {
  return typeof v === "object" && v !== null && Array.isArray((v as { keys?: unknown }).keys);
}

/** Strips private members and refuses symmetric keys. */
function publicJwk(jwk: JWK, where: string): JWK {
  if (typeof jwk !== "object" || jwk === null || typeof jwk.kty !== "string")
    throw new Error(`${where}: not a JWK`);
  if (jwk.kty === "oct") throw new Error(`${where}: symmetric keys are not accepted (use JWT_HS256_SECRET)`);
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, k: _k, ...pub } = jwk;
  return pub;
}

/** Pins each key to the one algorithm its type implies, so an RSA key is never tried as PS256. */
function withAlg(jwk: JWK): JWK {
  if (jwk.alg) return jwk;
  if (jwk.kty === "RSA") return { ...jwk, alg: "RS256" };
  if (jwk.kty === "EC" && jwk.crv === "P-256") return { ...jwk, alg: "ES256" };
  if (jwk.kty === "EC" && jwk.crv === "P-384") return { ...jwk, alg: "ES384" };
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return { ...jwk, alg: "EdDSA" };
  return jwk;
}

/** Options of {@link KeyStore}. */
export interface KeyStoreOptions {
  /** Keys from configuration, fixed for the process lifetime. */
  configured: JWK[];
  /** JWKS file to follow, if any. */
  file?: string;
  /** Minimum time between two checks of the file (0 = check on every lookup). */
  reloadIntervalMs: number;
  warn: KeyWarning;
}

/**
 * The current key set: configured keys plus the file's keys. The file is re-read only when
 * its modification time or size changed, checked at most every `reloadIntervalMs` — and at
 * once when a token names a key id we do not know, which is what a rotation looks like. A
 * file that cannot be read or parsed keeps the previous keys (a half-written file must not
 * log everybody out).
 */
export class KeyStore {
  private lookup: KeyLookup | undefined;
  private fileKeys: JWK[] = [];
  private version = "";
  private checkedAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<void> | undefined;

  constructor(private readonly opts: KeyStoreOptions) {}

  /** Loads the file once; call at start-up so a missing file fails fast. */
  async start(): Promise<void> {
    if (this.opts.file !== undefined) await this.reload(true);
    this.rebuild();
  }

  /** The key set to verify with, refreshed from the file when due (or when `force`). */
  async current(force = false): Promise<KeyLookup | undefined> {
    if (this.opts.file !== undefined) {
      const due = Date.now() - this.checkedAt >= this.opts.reloadIntervalMs;
      if (force || due) {
        this.pending ??= this.reload(false).finally(() => {
          this.pending = undefined;
        });
        await this.pending;
      }
    }
    if (!this.lookup) this.rebuild();
    return this.lookup;
  }

  /** Whether any asymmetric key is known. */
  get size(): number {
    return this.opts.configured.length + this.fileKeys.length;
  }

  private async reload(strict: boolean): Promise<void> {
    const file = this.opts.file as string;
    this.checkedAt = Date.now();
    try {
      const st = await stat(file);
      const version = `${st.mtimeMs}:${st.size}:${st.ino}`;
      if (version === this.version) return;
      const parsed: unknown = JSON.parse(await readFile(file, "utf8"));
      if (!isJwks(parsed)) throw new Error("not a JWKS document ({keys: [...]})");
      this.fileKeys = parsed.keys.map((k, i) => withAlg(publicJwk(k, `${file} key ${i}`)));
      this.version = version;
      this.rebuild();
    } catch (err) {
      if (strict) throw new Error(`JWT_JWKS_FILE ${file}: ${(err as Error).message}`, { cause: err });
      this.opts.warn(`JWKS file ${file} could not be reloaded; keeping the previous keys`, err);
    }
  }

  private rebuild(): void {
    const keys = [...this.opts.configured.map(withAlg), ...this.fileKeys];
    this.lookup = keys.length > 0 ? createLocalJWKSet({ keys }) : undefined;
  }
}
