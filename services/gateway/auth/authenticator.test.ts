import { beforeAll, describe, expect, it } from "vitest";
import { Code, ServiceError } from "../../../mesh/errors.js";
import { GatewayAuthenticator } from "./authenticator.js";
import { JwtVerifier } from "./jwt.js";
import { KeyStore } from "./jwt-keys.js";
import type { MembershipSource } from "./memberships.js";
import { TtlCache } from "./memberships.js";
import { type GatewayPrincipal, MAX_FORWARDED_ROLES } from "./principal.js";
import type { RoleName } from "./roles.js";
import { createTestIssuer, TEST_AUDIENCE, TEST_ISSUER, type TestIssuer } from "./testing.js";

describe("GatewayAuthenticator", () => {
  let issuer: TestIssuer;
  let memberships: Record<string, RoleName>;
  let auth: GatewayAuthenticator;
  const keyPrincipal: GatewayPrincipal = {
    type: "api_key",
    id: "k1",
    authMethod: "api_key",
    projectRoles: {},
  };
  const keysSeen: string[] = [];

  beforeAll(async () => {
    issuer = await createTestIssuer();
    const source: MembershipSource = {
      roleIn: async () => undefined,
      rolesOf: async () => ({ roles: memberships, truncated: false }),
      forget: () => {},
    };
    const jwt = new JwtVerifier({
      issuer: TEST_ISSUER,
      audience: [TEST_AUDIENCE],
      algorithms: ["ES256"],
      keys: new KeyStore({ configured: [issuer.publicJwk], reloadIntervalMs: 0, warn: () => {} }),
      clockToleranceMs: 5_000,
      maxLifetimeMs: 3_600_000,
      adminClaim: "codex_admin",
      adminValue: "true",
      principalTypeClaim: "codex_principal_type",
    });
    const apiKeys = {
      authenticate: async (secret: string) => {
        keysSeen.push(secret);
        return keyPrincipal;
      },
    };
    auth = new GatewayAuthenticator({ jwt, apiKeys, memberships: source });
  });

  const refused = async (creds: { authorization?: string; apiKey?: string }) => {
    const err = await auth.authenticate(creds).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as ServiceError).code).toBe(Code.UNAUTHENTICATED);
    return (err as ServiceError).message;
  };

  it("builds a user principal with its memberships and the admin marker", async () => {
    memberships = { p1: "owner", p2: "viewer" };
    const token = await issuer.mint({ sub: "alice", name: "Alice", codex_admin: true });
    const p = (await auth.authenticate({ authorization: `Bearer ${token}` })) as GatewayPrincipal;
    expect(p).toMatchObject({ type: "user", id: "alice", displayName: "Alice", authMethod: "jwt" });
    expect(p.projectRoles).toEqual({ "*": "admin", p1: "owner", p2: "viewer" });
  });

  it("bounds the forwarded memberships and says so", async () => {
    memberships = Object.fromEntries(
      Array.from({ length: MAX_FORWARDED_ROLES + 5 }, (_, i) => [`p${String(i).padStart(4, "0")}`, "viewer"]),
    );
    const p = (await auth.authenticate({
      authorization: `Bearer ${await issuer.mint({ sub: "many" })}`,
    })) as GatewayPrincipal;
    expect(Object.keys(p.projectRoles ?? {})).toHaveLength(MAX_FORWARDED_ROLES);
    expect(p.projectRolesTruncated).toBe(true);
  });

  it("sends API keys (x-api-key or Bearer cdx_…) to the key authenticator", async () => {
    expect(await auth.authenticate({ apiKey: "cdx_abc" })).toBe(keyPrincipal);
    expect(await auth.authenticate({ authorization: "Bearer cdx_def" })).toBe(keyPrincipal);
    expect(keysSeen).toEqual(["cdx_abc", "cdx_def"]);
  });

  it("refuses no credentials, two at once, and other schemes", async () => {
    expect(await refused({})).toMatch(/credentials required/);
    expect(await refused({ authorization: "Bearer x", apiKey: "cdx_a" })).toMatch(/not both/);
    expect(await refused({ authorization: "Basic YWxpY2U6cHc=" })).toMatch(/Bearer/);
    expect(await refused({ authorization: "Bearer not.a.jwt" })).toMatch(/token/);
  });
});

describe("TtlCache", () => {
  it("loads once per key while fresh, again after expiry, never caches failures", async () => {
    let now = 0;
    const cache = new TtlCache<number>(1_000, 10, () => now);
    let loads = 0;
    const load = async () => ++loads;
    await Promise.all([cache.get("a", load), cache.get("a", load)]);
    expect(loads).toBe(1);
    now = 1_001;
    expect(await cache.get("a", load)).toBe(2);
    await expect(cache.get("b", () => Promise.reject(new Error("down")))).rejects.toThrow();
    await new Promise((r) => setImmediate(r));
    expect(await cache.get("b", load)).toBe(3);
    cache.forget("a");
    expect(await cache.get("a", load)).toBe(4);
  });
});
