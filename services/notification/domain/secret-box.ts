import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/**
 * AES-256-GCM for channel credentials at rest (webhook secrets, Slack webhook URLs).
 *
 * Layout: version byte (1) | 12-byte nonce | 16-byte tag | ciphertext. The associated data
 * binds a ciphertext to its row and purpose (`<subscription id>:webhook.secret`), so a value
 * copied into another row or column fails to decrypt instead of leaking into the wrong channel.
 * The version byte leaves room for key rotation (a new version per key).
 */
const VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export class SecretBox {
  readonly #key: Buffer;

  /** @param key 32 bytes (AES-256). */
  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new Error(`encryption key must be 32 bytes, got ${key.length}`);
    this.#key = Buffer.from(key);
  }

  /** Parses a base64 key (as NOTIFICATION_ENCRYPTION_KEY holds it). */
  static fromBase64(b64: string): SecretBox {
    return new SecretBox(Buffer.from(b64, "base64"));
  }

  seal(plaintext: string, aad: string): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, nonce);
    cipher.setAAD(Buffer.from(aad, "utf8"));
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), nonce, cipher.getAuthTag(), body]);
  }

  /** @throws when the data was tampered with, sealed under another key, or for another `aad`. */
  open(sealed: Uint8Array, aad: string): string {
    const buf = Buffer.from(sealed);
    if (buf.length < 1 + NONCE_BYTES + TAG_BYTES || buf[0] !== VERSION) {
      throw new Error("sealed secret: unknown format");
    }
    const nonce = buf.subarray(1, 1 + NONCE_BYTES);
    const tag = buf.subarray(1 + NONCE_BYTES, 1 + NONCE_BYTES + TAG_BYTES);
    const decipher = createDecipheriv("aes-256-gcm", this.#key, nonce);
    decipher.setAAD(Buffer.from(aad, "utf8"));
    decipher.setAuthTag(tag);
    return Buffer.concat([
      decipher.update(buf.subarray(1 + NONCE_BYTES + TAG_BYTES)),
      decipher.final(),
    ]).toString("utf8");
  }
}
