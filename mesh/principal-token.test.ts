import { describe, expect, it } from "vitest";
import { signPrincipal, verifyPrincipal } from "./principal-token.js";

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
