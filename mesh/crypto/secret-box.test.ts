import { createCipheriv, createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { deriveKey, SecretBox } from "./secret-box.js";

const key = Buffer.alloc(32, 7);

describe("SecretBox", () => {
  it("opens what it sealed, for the same associated data only", () => {
    const box = new SecretBox(key);
    const sealed = box.seal("hunter2", "sub-1:webhook.secret");
    expect(sealed.includes(Buffer.from("hunter2"))).toBe(false);
    expect(box.openText(sealed, "sub-1:webhook.secret")).toBe("hunter2");
    expect(() => box.open(sealed, "sub-2:webhook.secret")).toThrow();
    const bytes = Uint8Array.of(0, 1, 255);
    expect([...box.open(box.seal(bytes, "a"), "a")]).toEqual([0, 1, 255]);
  });

  it("uses a fresh nonce per seal", () => {
    const box = new SecretBox(key);
    expect(box.seal("same", "a").equals(box.seal("same", "a"))).toBe(false);
  });

  it("refuses tampered data, another key and unknown formats", () => {
    const box = new SecretBox(key);
    const sealed = box.seal("value", "a");
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 1] = (flipped.at(-1) ?? 0) ^ 1;
    expect(() => box.open(flipped, "a")).toThrow();
    expect(() => new SecretBox(Buffer.alloc(32, 8)).open(sealed, "a")).toThrow();
    expect(() => box.open(Buffer.concat([Buffer.of(2), sealed.subarray(1)]), "a")).toThrow(/unknown format/);
    expect(() => box.open(sealed.subarray(0, 20), "a")).toThrow(/unknown format/);
  });

  it("opens values sealed by the services' own layout (version | nonce | tag | ciphertext)", () => {
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", key, nonce);
    cipher.setAAD(Buffer.from("req-1", "utf8"));
    const body = Buffer.concat([cipher.update('{"token":"t"}', "utf8"), cipher.final()]);
    const stored = Buffer.concat([Buffer.of(1), nonce, cipher.getAuthTag(), body]);
    expect(new SecretBox(key).openText(stored, "req-1")).toBe('{"token":"t"}');
  });

  it("checks key sizes, naming the setting", () => {
    expect(() => new SecretBox(Buffer.alloc(16))).toThrow(/32 bytes, got 16/);
    expect(() =>
      SecretBox.fromBase64(Buffer.alloc(31).toString("base64"), "NOTIFICATION_ENCRYPTION_KEY"),
    ).toThrow(/NOTIFICATION_ENCRYPTION_KEY must be base64 of exactly 32 bytes/);
    expect(
      SecretBox.fromBase64(key.toString("base64")).openText(new SecretBox(key).seal("x", "a"), "a"),
    ).toBe("x");
  });
});

describe("deriveKey", () => {
  it("gives one stable 32-byte key per purpose (RFC 5869 HKDF-SHA256, empty salt)", () => {
    const a = deriveKey(key, "codex agent-manager answers v1");
    expect(a).toHaveLength(32);
    expect(deriveKey(key, "codex agent-manager answers v1").equals(a)).toBe(true);
    expect(deriveKey(key, "codex agent-manager sessions v1").equals(a)).toBe(false);
    // HKDF by hand: PRK = HMAC(salt = 32 zero bytes, master); OKM = HMAC(PRK, info || 0x01).
    const prk = createHmac("sha256", Buffer.alloc(32)).update(key).digest();
    const okm = createHmac("sha256", prk)
      .update(Buffer.concat([Buffer.from("p"), Buffer.of(1)]))
      .digest();
    expect(deriveKey(key, "p").equals(okm)).toBe(true);
  });
});
