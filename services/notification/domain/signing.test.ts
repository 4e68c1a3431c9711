import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SecretBox } from "./secret-box.js";
import { signatureHeader, verifySignatureHeader } from "./signing.js";

describe("webhook signatures", () => {
  it("signs '<t>.<body>' with HMAC-SHA256 and verifies within the tolerance only", () => {
    const h = signatureHeader("s3cret-s3cret-s3cret", '{"a":1}', 1_700_000_000);
    const mac = createHmac("sha256", "s3cret-s3cret-s3cret").update('1700000000.{"a":1}').digest("hex");
    expect(h).toBe(`t=1700000000,v1=${mac}`);
    expect(verifySignatureHeader("s3cret-s3cret-s3cret", '{"a":1}', h, { nowSec: 1_700_000_100 })).toBe(true);
    expect(verifySignatureHeader("s3cret-s3cret-s3cret", '{"a":2}', h, { nowSec: 1_700_000_100 })).toBe(
      false,
    );
    expect(verifySignatureHeader("other-secret-other", '{"a":1}', h, { nowSec: 1_700_000_100 })).toBe(false);
    expect(verifySignatureHeader("s3cret-s3cret-s3cret", '{"a":1}', h, { nowSec: 1_700_000_400 })).toBe(
      false,
    );
  });
});

describe("SecretBox", () => {
  const box = new SecretBox(Buffer.alloc(32, 7));
  it("round-trips and never stores the plaintext", () => {
    const sealed = box.seal("whsec-very-secret", "sub1:webhook.secret");
    expect(sealed.toString("latin1")).not.toContain("whsec-very-secret");
    expect(box.open(sealed, "sub1:webhook.secret")).toBe("whsec-very-secret");
  });
  it("refuses another row's ciphertext, tampering and another key", () => {
    const sealed = box.seal("x", "sub1:webhook.secret");
    expect(() => box.open(sealed, "sub2:webhook.secret")).toThrow();
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    expect(() => box.open(tampered, "sub1:webhook.secret")).toThrow();
    expect(() => new SecretBox(Buffer.alloc(32, 8)).open(sealed, "sub1:webhook.secret")).toThrow();
    expect(() => new SecretBox(Buffer.alloc(16))).toThrow(/32 bytes/);
  });
});
