import { describe, expect, it } from "vitest";
import type { Principal } from "../../../mesh/context.js";
import { isNonPublicHost } from "./address-policy.js";
import { allowed, readableProjects } from "./authz.js";

const user = (roles: Record<string, string>): Principal => ({ type: "user", id: "u", projectRoles: roles });

describe("authorization", () => {
  it("needs any role to read and maintainer/owner to change", () => {
    expect(allowed(user({ p1: "VIEWER" }), "p1", "read")).toBe(true);
    expect(allowed(user({ p1: "viewer" }), "p1", "maintain")).toBe(false);
    expect(allowed(user({ p1: "maintainer" }), "p1", "maintain")).toBe(true);
    expect(allowed(user({ p1: "ROLE_OWNER" }), "p1", "maintain")).toBe(true);
    expect(allowed(user({ p1: "MEMBER_ROLE_MAINTAINER" }), "p1", "maintain")).toBe(true);
    expect(allowed(user({ p1: "superuser" }), "p1", "read")).toBe(false);
    expect(allowed(user({ p1: "OWNER" }), "p2", "read")).toBe(false);
  });
  it("reserves all-project subscriptions to platform admins", () => {
    expect(allowed(user({ p1: "OWNER" }), "", "read")).toBe(false);
    expect(allowed(user({ "*": "admin" }), "", "maintain")).toBe(true);
    expect(allowed({ type: "service", id: "scheduler" }, "", "maintain")).toBe(true);
    expect(readableProjects(user({ p1: "VIEWER", "*": "" }))).toEqual(["p1"]);
    expect(readableProjects(user({ "*": "admin" }))).toBe("all");
  });
});

describe("target address policy", () => {
  it("refuses loopback, private, link-local and mapped addresses", () => {
    for (const h of [
      "localhost",
      "127.0.0.1",
      "10.1.2.3",
      "172.20.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "[::1]",
      "[fd00::1]",
      "[fe80::1]",
      "[::ffff:127.0.0.1]",
      "0.0.0.0",
    ]) {
      expect(isNonPublicHost(h), h).toBe(true);
    }
    for (const h of ["hooks.slack.com", "8.8.8.8", "[2001:4860::8888]", "172.32.0.1"]) {
      expect(isNonPublicHost(h), h).toBe(false);
    }
  });
});
