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

/** Verifies a principal token; returns undefined when it is forged, malformed or expired. */
export function verifyPrincipal(token: string, secret: string, now = Date.now()): Principal | undefined {
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
    return parsed.p;
  } catch {
    return undefined;
  }
}

function mac(body: string, secret: string): string {
  return createHmac("sha256", secret).update(body).digest("base64url");
}
