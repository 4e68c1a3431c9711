import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
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
