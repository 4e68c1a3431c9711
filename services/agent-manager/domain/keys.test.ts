import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SecretBox } from "../../../mesh/crypto/secret-box.js";
import { deriveKeys, openAnswer, parseSessionToken, sealAnswer, sessionToken } from "./keys.js";

/**
 * Values produced by the service's own secret-box code before answers moved to mesh's
 * SecretBox (domain/secret-box.ts: deriveKeys / seal / sessionToken), for this fixed master
 * key. Stored answers must keep opening and live session tokens must keep verifying.
 */
const MASTER = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const ANSWERS_KEY = "76e144ecc569847c65259c6eddab8cd11bfc15d41c30c99d13e7e040073097c9";
const INFO_REQUEST = "7f0c9a52-0000-4000-8000-00000000000a";
const VALUES = { TOKEN: "hunter2-very-secret", REGION: "eu-west-1" };
const SEALED =
  "ATpx9DCRYuKg0nVUPSl8h8c4mE41cWyuPvuezp1Pu1gWfoDveQzAKn91KwW5YHUSdjn/2rA2eFbw1MH9NIRRlwSz5pso4wYMmZnrxOh5etmb";
const SESSION_KEY = "8366ce78ace8ff1ad4268f094aad513cf43adde68ad289a5a578f4266f24bbee";
const SESSION_TOKEN = "am1.agent-1.s-1.n9f1KBhOQzj075js5TN1YQqs1_uP8PjPMH3asxY4hPo";

describe("keys released before the switch to mesh's SecretBox", () => {
  const keys = deriveKeys(MASTER);

  it("derive the same keys (HKDF-SHA256, empty salt, the same info strings)", () => {
    expect(keys.session.toString("hex")).toBe(SESSION_KEY);
    const sealed = Buffer.from(SEALED, "base64");
    expect(new SecretBox(Buffer.from(ANSWERS_KEY, "hex")).openText(sealed, INFO_REQUEST)).toBe(
      JSON.stringify(VALUES),
    );
  });

  it("open stored answers, for their info request only", () => {
    const sealed = Buffer.from(SEALED, "base64");
    expect(openAnswer(keys, sealed, INFO_REQUEST)).toEqual(VALUES);
    expect(() => openAnswer(keys, sealed, "7f0c9a52-0000-4000-8000-00000000000b")).toThrow();
  });

  it("issue and verify the same session tokens", () => {
    expect(sessionToken(keys, "agent-1", "s-1")).toBe(SESSION_TOKEN);
    expect(parseSessionToken(keys, SESSION_TOKEN)).toEqual({ agentId: "agent-1", sessionId: "s-1" });
  });
});

describe("answers and session tokens", () => {
  const keys = deriveKeys(randomBytes(32).toString("base64"));

  it("seal answers bound to their info request, in the version 1 | nonce | tag | ciphertext layout", () => {
    const sealed = sealAnswer(keys, { TOKEN: "hunter2-very-secret" }, "ir-1");
    expect(sealed[0]).toBe(1);
    expect(sealed).toHaveLength(1 + 12 + 16 + JSON.stringify({ TOKEN: "hunter2-very-secret" }).length);
    expect(sealed.toString("latin1")).not.toContain("hunter2");
    expect(openAnswer(keys, sealed, "ir-1")).toEqual({ TOKEN: "hunter2-very-secret" });
    expect(() => openAnswer(keys, sealed, "ir-2")).toThrow();
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    expect(() => openAnswer(keys, tampered, "ir-1")).toThrow();
  });

  it("issue session tokens that only this key verifies", () => {
    const token = sessionToken(keys, "agent-1", "s-1");
    expect(parseSessionToken(keys, token)).toEqual({ agentId: "agent-1", sessionId: "s-1" });
    expect(parseSessionToken(deriveKeys(randomBytes(32).toString("base64")), token)).toBeUndefined();
    expect(parseSessionToken(keys, token.replace("s-1", "s-2"))).toBeUndefined();
    expect(() => deriveKeys(randomBytes(16).toString("base64"))).toThrow(/32 bytes/);
  });
});
