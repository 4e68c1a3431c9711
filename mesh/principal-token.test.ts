import { describe, expect, it } from "vitest";
import type { Principal } from "./context.js";
import { PrincipalSigner, PrincipalVerifier, signPrincipal, verifyPrincipal } from "./principal-token.js";

const alice = { type: "user" as const, id: "alice" };

describe("principal token", () => {
  it("round-trips a principal signed with the mesh secret", () => {
    expect(verifyPrincipal(signPrincipal(alice, "s3cret"), "s3cret")).toEqual(alice);
  });

  it("refuses a token signed with another secret", () => {
    expect(verifyPrincipal(signPrincipal(alice, "other"), "s3cret")).toBeUndefined();
  });

  it("refuses a token whose body was altered", () => {
    const [, mac] = signPrincipal(alice, "s3cret").split(".");
    const forged = Buffer.from(
      JSON.stringify({ p: { type: "user", id: "root" }, exp: Date.now() + 1e6 }),
    ).toString("base64url");
    expect(verifyPrincipal(`${forged}.${mac}`, "s3cret")).toBeUndefined();
  });

  it("refuses an expired token and garbage", () => {
    expect(verifyPrincipal(signPrincipal(alice, "s3cret", 1_000, 0), "s3cret", 5_000)).toBeUndefined();
    expect(verifyPrincipal("not-a-token", "s3cret")).toBeUndefined();
    expect(verifyPrincipal(".", "s3cret")).toBeUndefined();
  });
});

describe("PrincipalVerifier", () => {
  it("answers a remembered token exactly as a fresh check would, until it expires", () => {
    const v = new PrincipalVerifier("s3cret");
    const token = signPrincipal(alice, "s3cret", 1_000, 0);
    expect(v.verify(token, 10)).toEqual(alice);
    expect(v.verify(token, 500)).toEqual(alice); // remembered
    expect(v.verify(token, 1_001)).toBeUndefined(); // expired, as verifyPrincipal says
    expect(verifyPrincipal(token, "s3cret", 1_001)).toBeUndefined();
  });

  it("never remembers a forged token, and stays bounded", () => {
    const v = new PrincipalVerifier("s3cret", 2);
    const forged = signPrincipal(alice, "other");
    expect(v.verify(forged)).toBeUndefined();
    expect(v.verify(forged)).toBeUndefined();
    const tokens = ["a", "b", "c"].map((id) => signPrincipal({ type: "user", id }, "s3cret"));
    for (const t of tokens) expect(v.verify(t)?.id).toBeDefined();
    for (const [i, t] of tokens.entries()) expect(v.verify(t)?.id).toBe(["a", "b", "c"][i]);
  });
});

const SECRET = "s".repeat(32);
const member: Principal = { type: "user", id: "alice", projectRoles: { p1: "viewer" } };

function expiryOf(token: string): number {
  const body = token.slice(0, token.indexOf("."));
  return (JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as { exp: number }).exp;
}

describe("PrincipalSigner", () => {
  it("reuses a token for the same principal while it has at least half its lifetime left", () => {
    let now = 1_000_000;
    const signer = new PrincipalSigner({ secret: SECRET, ttlMs: 60_000, now: () => now });
    const first = signer.sign(member);
    expect(verifyPrincipal(first, SECRET, now)).toEqual(member);
    now += 29_999;
    expect(signer.sign({ ...member, projectRoles: { p1: "viewer" } })).toBe(first);
    now += 1;
    const second = signer.sign(member);
    expect(second).not.toBe(first);
    expect(expiryOf(second)).toBe(now + 60_000);
    expect(verifyPrincipal(second, SECRET, now)).toEqual(member);
  });

  it("never sends a token with less than half its lifetime left", () => {
    let now = 5_000;
    const signer = new PrincipalSigner({ secret: SECRET, ttlMs: 10_000, now: () => now });
    for (let i = 0; i < 100; i++) {
      now += 137;
      expect(expiryOf(signer.sign(member)) - now).toBeGreaterThan(5_000);
    }
  });

  it("signs afresh when anything in the principal changes", () => {
    const signer = new PrincipalSigner({ secret: SECRET, ttlMs: 60_000 });
    const viewer = signer.sign(member);
    const maintainer = signer.sign({ ...member, projectRoles: { p1: "maintainer" } });
    expect(maintainer).not.toBe(viewer);
    expect(verifyPrincipal(maintainer, SECRET)?.projectRoles).toEqual({ p1: "maintainer" });
    expect(verifyPrincipal(signer.sign({ ...member, id: "bob" }), SECRET)?.id).toBe("bob");
  });

  it("remembers a bounded number of principals", () => {
    const signer = new PrincipalSigner({ secret: SECRET, ttlMs: 60_000, maxEntries: 10 });
    for (let i = 0; i < 50; i++) signer.sign({ type: "user", id: `u${i}` });
    expect(signer.size).toBe(10);
  });
});
