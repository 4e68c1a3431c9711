import { describe, expect, it } from "vitest";
import type { Principal } from "../../../mesh/context.js";
import { verifyPrincipal } from "../../../mesh/principal-token.js";
import { PrincipalSigner } from "./principal-signer.js";

const SECRET = "s".repeat(32);
const alice: Principal = { type: "user", id: "alice", projectRoles: { p1: "viewer" } };

function expiryOf(token: string): number {
  const body = token.slice(0, token.indexOf("."));
  return (JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as { exp: number }).exp;
}

describe("PrincipalSigner", () => {
  it("reuses a token for the same principal while it has at least half its lifetime left", () => {
    let now = 1_000_000;
    const signer = new PrincipalSigner({ secret: SECRET, ttlMs: 60_000, now: () => now });
    const first = signer.sign(alice);
    expect(verifyPrincipal(first, SECRET, now)).toEqual(alice);
    now += 29_999;
    expect(signer.sign({ ...alice, projectRoles: { p1: "viewer" } })).toBe(first);
    now += 1;
    const second = signer.sign(alice);
    expect(second).not.toBe(first);
    expect(expiryOf(second)).toBe(now + 60_000);
    expect(verifyPrincipal(second, SECRET, now)).toEqual(alice);
  });

  it("never sends a token with less than half its lifetime left", () => {
    let now = 5_000;
    const signer = new PrincipalSigner({ secret: SECRET, ttlMs: 10_000, now: () => now });
    for (let i = 0; i < 100; i++) {
      now += 137;
      expect(expiryOf(signer.sign(alice)) - now).toBeGreaterThan(5_000);
    }
  });

  it("signs afresh when anything in the principal changes", () => {
    const signer = new PrincipalSigner({ secret: SECRET, ttlMs: 60_000 });
    const viewer = signer.sign(alice);
    const maintainer = signer.sign({ ...alice, projectRoles: { p1: "maintainer" } });
    expect(maintainer).not.toBe(viewer);
    expect(verifyPrincipal(maintainer, SECRET)?.projectRoles).toEqual({ p1: "maintainer" });
    expect(verifyPrincipal(signer.sign({ ...alice, id: "bob" }), SECRET)?.id).toBe("bob");
  });

  it("remembers a bounded number of principals", () => {
    const signer = new PrincipalSigner({ secret: SECRET, ttlMs: 60_000, maxEntries: 10 });
    for (let i = 0; i < 50; i++) signer.sign({ type: "user", id: `u${i}` });
    expect(signer.size).toBe(10);
  });
});
