/**
 * The authentication, authorization and rate-limit settings of the gateway, as a config spec
 * the gateway's own config.ts spreads into its spec (only that file loads the environment).
 *
 * Cross-field rules (at least one JWT key source) are checked by the factories in index.ts,
 * which fail start-up with a message naming the variables.
 */
import {
  bool,
  type ConfigSpec,
  durationMs,
  list,
  loadConfig,
  oneOf,
  optional,
  str,
} from "../../../mesh/config.js";

/** `<count>/<s|m|h>`, e.g. "600/m": that many requests per period, bursts up to the count. */
export const RATE = /^[1-9]\d{0,6}\/(s|m|h)$/;

export const authConfigSpec = {
  /** Required `iss` of every JWT. */
  JWT_ISSUER: str({ minLength: 1 }),
  /** Accepted `aud` values; a token must name at least one. */
  JWT_AUDIENCE: list({ item: /^\S+$/ }),
  /**
   * Asymmetric algorithms accepted. `none` can never be listed; HS256 is accepted only when
   * JWT_HS256_SECRET is set (and then only for tokens signed with that secret).
   */
  JWT_ALGORITHMS: list({
    default: ["RS256", "ES256", "EdDSA"],
    item: /^(RS256|RS384|RS512|PS256|ES256|ES384|EdDSA)$/,
  }),
  /** Public keys as PEM block(s), one JWK or a JWKS document (JSON). */
  JWT_PUBLIC_KEYS: optional(str()),
  /** Path of a JWKS file, re-read when it changes (key rotation without restart). */
  JWT_JWKS_FILE: optional(str()),
  /** How often at most the JWKS file is checked for changes. */
  JWT_JWKS_RELOAD_INTERVAL: durationMs({ default: "5s", max: 300_000 }),
  /** Shared secret enabling HS256 (tests, single-tenant setups). At least 32 characters. */
  JWT_HS256_SECRET: optional(str({ secret: true, minLength: 32 })),
  /** Tolerated clock skew for exp, nbf and iat. */
  JWT_CLOCK_TOLERANCE: durationMs({ default: "30s", max: 300_000 }),
  /** Longest accepted token lifetime (exp − iat): tokens are meant to be short-lived. */
  JWT_MAX_LIFETIME: durationMs({ default: "1h", min: 60_000, max: 86_400_000 }),
  /** Claim naming platform administrators, e.g. `codex_admin: true` or `roles: [...]`. */
  JWT_ADMIN_CLAIM: str({ default: "codex_admin", pattern: /^[A-Za-z_][\w:.-]{0,99}$/ }),
  /** Value of the admin claim granting admin: equal to it, or contained in it when a list. */
  JWT_ADMIN_VALUE: str({ default: "true" }),
  /** Claim whose value "agent" makes the subject an AGENT principal (else a USER). */
  JWT_PRINCIPAL_TYPE_CLAIM: str({ default: "codex_principal_type", pattern: /^[A-Za-z_][\w:.-]{0,99}$/ }),
  /** How long project memberships are cached (the project contract allows at most 30 s). */
  AUTH_MEMBERSHIP_CACHE_TTL: durationMs({ default: "10s", max: 30_000 }),
  /** How long an API key lookup is cached (revocation must bite within 5 s). */
  AUTH_API_KEY_CACHE_TTL: durationMs({ default: "2s", max: 5_000 }),
  /** Per-client limits per route class, e.g. "600/m". */
  RATE_LIMIT_READ: str({ default: "600/m", pattern: RATE }),
  RATE_LIMIT_WRITE: str({ default: "120/m", pattern: RATE }),
  RATE_LIMIT_AGENT: str({ default: "3000/m", pattern: RATE }),
  RATE_LIMIT_STREAM: str({ default: "60/m", pattern: RATE }),
  /** When Redis cannot answer: `open` lets requests through (and counts them), `closed` refuses. */
  RATE_LIMIT_FAIL_MODE: oneOf(["open", "closed"] as const, { default: "open" }),
  /** Redis key prefix of the rate-limit state. */
  RATE_LIMIT_KEY_PREFIX: str({ default: "gateway:rl:", pattern: /^[\w:.-]{1,64}$/ }),
  /** Turns rate limiting off entirely (local development only). */
  RATE_LIMIT_DISABLED: bool({ default: false }),
} satisfies ConfigSpec;

/** Type of the values of {@link authConfigSpec}, for factories that take them. */
export interface AuthSettings {
  readonly JWT_ISSUER: string;
  readonly JWT_AUDIENCE: readonly string[];
  readonly JWT_ALGORITHMS: readonly string[];
  readonly JWT_PUBLIC_KEYS: string | undefined;
  readonly JWT_JWKS_FILE: string | undefined;
  readonly JWT_JWKS_RELOAD_INTERVAL: number;
  readonly JWT_HS256_SECRET: string | undefined;
  readonly JWT_CLOCK_TOLERANCE: number;
  readonly JWT_MAX_LIFETIME: number;
  readonly JWT_ADMIN_CLAIM: string;
  readonly JWT_ADMIN_VALUE: string;
  readonly JWT_PRINCIPAL_TYPE_CLAIM: string;
  readonly AUTH_MEMBERSHIP_CACHE_TTL: number;
  readonly AUTH_API_KEY_CACHE_TTL: number;
}

/** Type of the rate-limit values of {@link authConfigSpec}. */
export interface RateLimitSettings {
  readonly RATE_LIMIT_READ: string;
  readonly RATE_LIMIT_WRITE: string;
  readonly RATE_LIMIT_AGENT: string;
  readonly RATE_LIMIT_STREAM: string;
  readonly RATE_LIMIT_FAIL_MODE: "open" | "closed";
  readonly RATE_LIMIT_KEY_PREFIX: string;
  readonly RATE_LIMIT_DISABLED: boolean;
}

/**
 * The auth settings from the host's parsed config when the gateway's spec includes
 * {@link authConfigSpec} (the intended wiring); otherwise parsed here from the environment,
 * once, with the same checks and error messages.
 */
export function authSettingsOf(
  config: object,
  env: Readonly<Record<string, string | undefined>> = process.env,
): AuthSettings & RateLimitSettings {
  if ("JWT_ISSUER" in config && "RATE_LIMIT_READ" in config)
    return config as AuthSettings & RateLimitSettings;
  return loadConfig(authConfigSpec, env);
}
