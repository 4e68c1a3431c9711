/**
 * The keys derived from AGENT_MANAGER_ENCRYPTION_KEY: one seals info-request answers (mesh's
 * SecretBox, AES-256-GCM), the other signs the agents' session tokens (HMAC).
 *
 * Why: answers are secrets (cloud credentials and the like). They are stored only sealed, with
 * the info request id as associated data, so a sealed value copied onto another request does
 * not open. Session tokens are `am1.<agent id>.<session id>.<mac>`: the manager keeps only the
 * current session id per agent, which revokes older tokens on re-registration, and a replayed
 * RegisterAgent can hand out the same token again without the token ever being stored. The
 * two uses get separate keys derived from the configured one (HKDF-SHA256, empty salt, the
 * `info` strings below), so a MAC can never be confused with a cipher key. Changing an `info`
 * string would orphan every stored answer or live session: keys.test.ts pins them.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { deriveKey, SecretBox } from "../../../mesh/crypto/secret-box.js";

/** Keys derived from AGENT_MANAGER_ENCRYPTION_KEY. */
export interface Keys {
  /** Seals info-request answers. */
  readonly answers: SecretBox;
  /** HMAC-SHA256 key of session tokens. */
  readonly session: Buffer;
}

/** Derives the keys; throws when the configured key is not 32 bytes. */
export function deriveKeys(base64Key: string): Keys {
  const master = Buffer.from(base64Key, "base64");
  if (master.length !== 32)
    throw new Error("AGENT_MANAGER_ENCRYPTION_KEY must be base64 of exactly 32 bytes");
  return {
    answers: new SecretBox(deriveKey(master, "codex agent-manager answers v1")),
    session: deriveKey(master, "codex agent-manager sessions v1"),
  };
}

/** Seals an answer's values (as JSON) bound to `aad`, the info request id. */
export function sealAnswer(keys: Keys, values: Readonly<Record<string, string>>, aad: string): Buffer {
  return keys.answers.seal(JSON.stringify(values), aad);
}

/** Opens what {@link sealAnswer} sealed; throws when tampered with or bound to another id. */
export function openAnswer(keys: Keys, sealed: Uint8Array, aad: string): Record<string, string> {
  return JSON.parse(keys.answers.openText(sealed, aad)) as Record<string, string>;
}

function mac(keys: Keys, body: string): string {
  return createHmac("sha256", keys.session).update(body).digest("base64url");
}

/** The bearer token of one session. */
export function sessionToken(keys: Keys, agentId: string, sessionId: string): string {
  const body = `am1.${agentId}.${sessionId}`;
  return `${body}.${mac(keys, body)}`;
}

/** Agent and session a token names, if its MAC is genuine (validity is checked by the caller). */
export function parseSessionToken(
  keys: Keys,
  token: string,
): { agentId: string; sessionId: string } | undefined {
  const parts = token.split(".");
  if (parts.length !== 4 || parts[0] !== "am1") return undefined;
  const [, agentId = "", sessionId = "", given = ""] = parts;
  const expected = Buffer.from(mac(keys, `am1.${agentId}.${sessionId}`));
  const got = Buffer.from(given);
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) return undefined;
  return { agentId, sessionId };
}
