import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

/**
 * AES-256-GCM sealing of secrets kept at rest (channel credentials, answers to info requests).
 *
 * Layout: version byte (1) | 12-byte nonce | 16-byte tag | ciphertext — the layout the
 * notification and agent-manager services already store, so their sealed rows open unchanged.
 * The associated data binds a sealed value to its row and purpose (`<row id>:webhook.secret`):
 * a value copied into another row or column fails to open instead of leaking into the wrong
 * place. A fresh random nonce per seal is safe for far more than any one key will ever seal
 * (the GCM limit is about 2^32 messages per key). The version byte leaves room for rotation:
 * a new key gets a new version.
 */
const VERSION = 1;
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + NONCE_BYTES + TAG_BYTES;

export class SecretBox {
  readonly #key: Buffer;

  /** @param key 32 bytes (AES-256); use {@link deriveKey} to get one per purpose from a master key. */
  constructor(key: Uint8Array) {
    if (key.length !== KEY_BYTES)
      throw new Error(`encryption key must be ${KEY_BYTES} bytes, got ${key.length}`);
    this.#key = Buffer.from(key);
  }

  /**
   * A box for a base64 key as configuration holds it; `name` (the variable) is named in the
   * error, so a bad value stops the service with a message saying which setting to fix.
   */
  static fromBase64(b64: string, name = "encryption key"): SecretBox {
    const key = Buffer.from(b64, "base64");
    if (key.length !== KEY_BYTES) throw new Error(`${name} must be base64 of exactly ${KEY_BYTES} bytes`);
    return new SecretBox(key);
  }

  /** Encrypts `plaintext` (UTF-8 when a string) bound to `aad`. */
  seal(plaintext: string | Uint8Array, aad: string): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, nonce);
    cipher.setAAD(Buffer.from(aad, "utf8"));
    const data = typeof plaintext === "string" ? Buffer.from(plaintext, "utf8") : plaintext;
    const body = Buffer.concat([cipher.update(data), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), nonce, cipher.getAuthTag(), body]);
  }

  /** @throws when `sealed` was tampered with, sealed under another key, or for another `aad`. */
  open(sealed: Uint8Array, aad: string): Buffer {
    const buf = Buffer.from(sealed);
    if (buf.length < HEADER_BYTES || buf[0] !== VERSION) throw new Error("sealed secret: unknown format");
    const nonce = buf.subarray(1, 1 + NONCE_BYTES);
    const tag = buf.subarray(1 + NONCE_BYTES, HEADER_BYTES);
    const decipher = createDecipheriv("aes-256-gcm", this.#key, nonce);
    decipher.setAAD(Buffer.from(aad, "utf8"));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(buf.subarray(HEADER_BYTES)), decipher.final()]);
  }

  /** {@link open} for a value sealed from a string. */
  openText(sealed: Uint8Array, aad: string): string {
    return this.open(sealed, aad).toString("utf8");
  }
}

/**
 * A 32-byte key for one purpose, derived from a master key with HKDF-SHA256 (empty salt,
 * `info` naming the purpose, e.g. `"codex agent-manager answers v1"`).
 *
 * Why: one configured secret can serve several uses (sealing, MACs) without a key ever being
 * used for two of them; changing `info` gives an unrelated key.
 */
export function deriveKey(master: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), info, KEY_BYTES));
}
