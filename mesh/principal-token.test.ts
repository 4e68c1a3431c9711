import { describe, expect, it } from "vitest";
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

describe("PrincipalSigner", () => {
  it("reuses a token for the first half of its lifetime, then signs a fresh one", () => {
    const s = new PrincipalSigner("s3cret");
    const first = s.sign(alice, 1_000, 0);
    expect(s.sign(alice, 1_000, 499)).toBe(first);
    const later = s.sign(alice, 1_000, 500);
    expect(later).not.toBe(first);
    expect(verifyPrincipal(later, "s3cret", 1_400)).toEqual(alice);
    expect(s.sign({ ...alice }, 1_000, 10)).not.toBe(s.sign(alice, 1_000, 10)); // per principal object
  });
});
