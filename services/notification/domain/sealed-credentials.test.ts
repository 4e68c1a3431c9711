import { describe, expect, it } from "vitest";
import { SecretBox } from "../../../mesh/crypto/secret-box.js";
import { credentialAad } from "../store/subscription-record.js";

/**
 * Channel credentials sealed by the service's own SecretBox before it moved to
 * mesh/crypto/secret-box.ts (rows already in Postgres hold such values). They must keep
 * opening, with the same key as NOTIFICATION_ENCRYPTION_KEY holds it and the same associated data.
 */
const KEY_B64 = "+yBFao+02f4jSG2St9wBJktwlbrfBClOc5i94gcsUXY=";
const SUBSCRIPTION = "3d6f0000-0000-4000-8000-000000000001";
const RELEASED = {
  webhook: {
    plain: "whsec-very-secret",
    sealed: "AQQ60eDi9/NAcXMq/IJZT0YRlGA59zzTKyfpW3CTOs8j+Alq0D6XVyh8nyOxuA==",
  },
  slack: {
    plain: "https://hooks.slack.com/services/T000/B000/XXXX",
    sealed:
      "AaHoF1PC2s+UmfpiPF2zuQQiZZCdBC0+gUkCdgvenEI3x84UysGe2t68pp8sQRblrmQFQpIkJABwNeiMgtySIRJCHYi+ejy9eMeGuw==",
  },
} as const;

describe("sealed channel credentials", () => {
  const box = SecretBox.fromBase64(KEY_B64, "NOTIFICATION_ENCRYPTION_KEY");

  it("open the values sealed before the switch to mesh, for their row and purpose only", () => {
    for (const kind of ["webhook", "slack"] as const) {
      const sealed = Buffer.from(RELEASED[kind].sealed, "base64");
      expect(credentialAad(SUBSCRIPTION, kind)).toBe(
        `${SUBSCRIPTION}:${kind === "webhook" ? "webhook.secret" : "slack.webhook_url"}`,
      );
      expect(box.openText(sealed, credentialAad(SUBSCRIPTION, kind))).toBe(RELEASED[kind].plain);
      expect(() => box.open(sealed, credentialAad("3d6f0000-0000-4000-8000-000000000002", kind))).toThrow();
    }
    expect(() =>
      box.open(Buffer.from(RELEASED.webhook.sealed, "base64"), credentialAad(SUBSCRIPTION, "slack")),
    ).toThrow();
  });

  it("read the key in either base64 alphabet, as the configuration allows", () => {
    const urlSafe = SecretBox.fromBase64("-yBFao-02f4jSG2St9wBJktwlbrfBClOc5i94gcsUXY");
    const sealed = Buffer.from(RELEASED.webhook.sealed, "base64");
    expect(urlSafe.openText(sealed, credentialAad(SUBSCRIPTION, "webhook"))).toBe(RELEASED.webhook.plain);
  });

  it("seal in the same layout: version 1 | 12-byte nonce | 16-byte tag | ciphertext", () => {
    const sealed = box.seal("whsec-very-secret", credentialAad(SUBSCRIPTION, "webhook"));
    expect(sealed[0]).toBe(1);
    expect(sealed).toHaveLength(1 + 12 + 16 + "whsec-very-secret".length);
    expect(sealed.toString("latin1")).not.toContain("whsec-very-secret");
    expect(box.openText(sealed, credentialAad(SUBSCRIPTION, "webhook"))).toBe("whsec-very-secret");
  });

  it("refuse tampered values and other keys", () => {
    const sealed = Buffer.from(RELEASED.webhook.sealed, "base64");
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1] = (tampered.at(-1) ?? 0) ^ 1;
    expect(() => box.open(tampered, credentialAad(SUBSCRIPTION, "webhook"))).toThrow();
    expect(() =>
      new SecretBox(Buffer.alloc(32, 8)).open(sealed, credentialAad(SUBSCRIPTION, "webhook")),
    ).toThrow();
  });
});
