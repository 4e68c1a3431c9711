/**
 * Sealing of info-request answers (AES-256-GCM) and the agents' session tokens (HMAC).
 *
 * Why: answers are secrets (cloud credentials and the like). They are stored only as
 * `version || iv || tag || ciphertext`, with the info request id as additional authenticated
 * data, so a sealed value copied onto another request does not open. Session tokens are
 * `am1.<agent id>.<session id>.<mac>`: the manager keeps only the current session id per agent,
 * which revokes older tokens on re-registration, and a replayed RegisterAgent can hand out the
 * same token again without the token ever being stored. The two uses get separate keys derived
 * from the configured one (HKDF), so a MAC can never be confused with a cipher key.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Keys derived from AGENT_MANAGER_ENCRYPTION_KEY. */
export interface Keys {
  readonly seal: Buffer;
  readonly session: Buffer;
}

/** Derives the keys; throws when the configured key is not 32 bytes. */
export function deriveKeys(base64Key: string): Keys {
  const master = Buffer.from(base64Key, "base64");
  if (master.length !== 32)
    throw new Error("AGENT_MANAGER_ENCRYPTION_KEY must be base64 of exactly 32 bytes");
  const derive = (info: string) => Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), info, 32));
  return {
    seal: derive("codex agent-manager answers v1"),
    session: derive("codex agent-manager sessions v1"),
  };
}

/** Encrypts a value map bound to `aad` (the info request id). */
export function seal(keys: Keys, values: Readonly<Record<string, string>>, aad: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", keys.seal, iv);
  cipher.setAAD(Buffer.from(aad, "utf8"));
  const body = Buffer.concat([cipher.update(JSON.stringify(values), "utf8"), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]);
}

/** Decrypts what {@link seal} produced; throws when tampered with or bound to another id. */
export function open(keys: Keys, sealed: Uint8Array, aad: string): Record<string, string> {
  const buf = Buffer.from(sealed);
  if (buf[0] !== VERSION) throw new Error("unknown sealed answer version");
  const iv = buf.subarray(1, 1 + IV_BYTES);
  const tag = buf.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", keys.seal, iv);
  decipher.setAAD(Buffer.from(aad, "utf8"));
  decipher.setAuthTag(tag);
  const plain = Buffer.concat([decipher.update(buf.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
  return JSON.parse(plain.toString("utf8")) as Record<string, string>;
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
