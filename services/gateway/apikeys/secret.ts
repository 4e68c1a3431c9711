/**
 * API key secrets: `cdx_<lookup>_<random>` (api_key.proto).
 *
 * - `lookup`: 12 hex characters, random and unique, stored in clear to find the key in one
 *   indexed read; `cdx_<lookup>` is the displayable `key_prefix`.
 * - `random`: 32 random bytes (256 bits) in base64url; only the SHA-256 of the whole secret is
 *   stored. A plain hash (not a slow KDF) is right here: the secret has 256 bits of entropy,
 *   so there is nothing to brute-force, and every request must verify it cheaply.
 * The hash is compared in constant time so response timing reveals nothing about it.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

const SECRET = /^cdx_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface NewSecret {
  secret: string;
  lookup: string;
  keyPrefix: string;
  hash: Buffer;
}

/** Generates a fresh secret with its lookup, prefix and hash. */
export function newSecret(): NewSecret {
  const lookup = randomBytes(6).toString("hex");
  const secret = `cdx_${lookup}_${randomBytes(32).toString("base64url")}`;
  return { secret, lookup, keyPrefix: `cdx_${lookup}`, hash: hashSecret(secret) };
}

/** The lookup part of a well-formed secret, or undefined. */
export function lookupOf(secret: string): string | undefined {
  return SECRET.exec(secret)?.[1];
}

export function hashSecret(secret: string): Buffer {
  return createHash("sha256").update(secret, "utf8").digest();
}

/** Whether `secret` hashes to `stored`, in time independent of where they differ. */
export function secretMatches(secret: string, stored: Buffer): boolean {
  const given = hashSecret(secret);
  return given.length === stored.length && timingSafeEqual(given, stored);
}
