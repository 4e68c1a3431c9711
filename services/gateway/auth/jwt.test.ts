import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ServiceError } from "../../../mesh/errors.js";
import { JwtVerifier, type JwtVerifierOptions } from "./jwt.js";
import { KeyStore, parseConfiguredKeys } from "./jwt-keys.js";
import {
  createTestIssuer,
  mintHs256,
  mintUnsigned,
  TEST_AUDIENCE,
  TEST_ISSUER,
  type TestIssuer,
} from "./testing.js";

const SECRET = "a-shared-secret-of-at-least-32-characters!";
const now = () => Math.floor(Date.now() / 1000);

function verifier(keys: KeyStore, extra: Partial<JwtVerifierOptions> = {}): JwtVerifier {
  return new JwtVerifier({
    issuer: TEST_ISSUER,
    audience: [TEST_AUDIENCE],
    algorithms: ["RS256", "ES256", "EdDSA"],
    keys,
    clockToleranceMs: 5_000,
    maxLifetimeMs: 3_600_000,
    adminClaim: "codex_admin",
    adminValue: "true",
    principalTypeClaim: "codex_principal_type",
    ...extra,
  });
}

function configured(...issuers: TestIssuer[]): KeyStore {
  const raw = JSON.stringify({ keys: issuers.map((i) => i.publicJwk) });
  return new KeyStore({ configured: parseConfiguredKeys(raw), reloadIntervalMs: 0, warn: () => {} });
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ServiceError);
  expect((err as ServiceError).code).toBe(Code.UNAUTHENTICATED);
  return (err as ServiceError).message;
}

describe("JwtVerifier", () => {
  let es: TestIssuer;
  let other: TestIssuer;
  beforeAll(async () => {
    es = await createTestIssuer("ES256");
    other = await createTestIssuer("ES256", es.kid); // same kid, different key: a forgery
  });

  it("accepts a valid token and reads the identity", async () => {
    const id = await verifier(configured(es)).verify(await es.mint({ sub: "alice", name: "Alice" }));
    expect(id).toMatchObject({ subject: "alice", type: "user", displayName: "Alice", platformAdmin: false });
    expect(id.expiresAt).toBeGreaterThan(Date.now());
  });

  it.each(["RS256", "EdDSA"] as const)("accepts %s", async (alg) => {
    const issuer = await createTestIssuer(alg);
    const id = await verifier(configured(issuer)).verify(await issuer.mint({ sub: "bob" }));
    expect(id.subject).toBe("bob");
  });

  it("reads admin and agent claims", async () => {
    const v = verifier(configured(es));
    expect((await v.verify(await es.mint({ sub: "root", codex_admin: true }))).platformAdmin).toBe(true);
    const agent = await v.verify(
      await es.mint({ sub: "agent-7", codex_principal_type: "agent", codex_admin: true }),
    );
    expect(agent).toMatchObject({ type: "agent", platformAdmin: false });
    const roles = verifier(configured(es), { adminClaim: "roles", adminValue: "platform-admin" });
    expect(
      (await roles.verify(await es.mint({ sub: "r", roles: ["dev", "platform-admin"] }))).platformAdmin,
    ).toBe(true);
    expect((await roles.verify(await es.mint({ sub: "r", roles: ["dev"] }))).platformAdmin).toBe(false);
  });

  it("refuses expired tokens (beyond the clock tolerance)", async () => {
    const token = await es.mint({ sub: "a" }, { iat: now() - 120, exp: now() - 10 });
    expect(await refusal(verifier(configured(es)).verify(token))).toBe("token expired");
    const withinTolerance = await es.mint({ sub: "a" }, { iat: now() - 120, exp: now() - 2 });
    await expect(verifier(configured(es)).verify(withinTolerance)).resolves.toBeDefined();
  });

  it("remembers a verified token only until a fresh check would refuse it as expired", async () => {
    const exp = now() + 60;
    const token = await es.mint({ sub: "a" }, { iat: now() - 10, exp });
    let clock = Date.now();
    const v = verifier(configured(es), { now: () => clock });
    expect((await v.verify(token)).subject).toBe("a");
    expect((await v.verify(token)).subject).toBe("a");
    expect(v.cached).toBe(1);
    // The tolerance is 5 s: the token is good until (exp + 5) s, and not one millisecond longer.
    clock = (exp + 5) * 1000 - 1;
    expect((await v.verify(token)).subject).toBe("a");
    clock = (exp + 5) * 1000;
    expect(await refusal(v.verify(token))).toBe("token expired");
    expect(v.cached).toBe(0);
  });

  it("never remembers a refusal and keeps a bounded number of tokens", async () => {
    const v = verifier(configured(es), { cacheSize: 3 });
    const expired = await es.mint({ sub: "a" }, { iat: now() - 120, exp: now() - 10 });
    expect(await refusal(v.verify(expired))).toBe("token expired");
    expect(v.cached).toBe(0);
    for (let i = 0; i < 5; i++) await v.verify(await es.mint({ sub: `u${i}` }));
    expect(v.cached).toBe(3);
    const uncached = verifier(configured(es), { cacheSize: 0 });
    await uncached.verify(await es.mint({ sub: "a" }));
    expect(uncached.cached).toBe(0);
  });

  it("refuses tokens that are not yet valid", async () => {
    const token = await es.mint({ sub: "a" }, { nbf: now() + 60 });
    expect(await refusal(verifier(configured(es)).verify(token))).toBe("token not yet valid");
  });

  it("refuses a wrong signature", async () => {
    const forged = await other.mint({ sub: "a" });
    expect(await refusal(verifier(configured(es)).verify(forged))).toBe("token signature invalid");
    const good = await es.mint({ sub: "a" });
    const tampered = `${good.split(".")[0]}.${Buffer.from(JSON.stringify({ sub: "admin" })).toString("base64url")}.${good.split(".")[2]}`;
    await refusal(verifier(configured(es)).verify(tampered));
  });

  it("refuses the wrong issuer and audience", async () => {
    const v = verifier(configured(es));
    expect(await refusal(v.verify(await es.mint({ sub: "a" }, { issuer: "https://evil" })))).toBe(
      "token issuer not accepted",
    );
    expect(await refusal(v.verify(await es.mint({ sub: "a" }, { audience: "another-app" })))).toBe(
      "token audience not accepted",
    );
  });

  it("always refuses alg none, even with HS256 enabled", async () => {
    for (const v of [verifier(configured(es)), verifier(configured(es), { hs256Secret: SECRET })]) {
      expect(await refusal(v.verify(mintUnsigned({ sub: "a" })))).toMatch(/algorithm "none" is not accepted/);
    }
  });

  it("refuses HS256 unless a shared secret is configured", async () => {
    const token = await mintHs256(SECRET, { sub: "a" });
    expect(await refusal(verifier(configured(es)).verify(token))).toMatch(
      /algorithm "HS256" is not accepted/,
    );
    const id = await verifier(configured(es), { hs256Secret: SECRET }).verify(token);
    expect(id.subject).toBe("a");
    const wrongSecret = await mintHs256(`${SECRET}-other`, { sub: "a" });
    await refusal(verifier(configured(es), { hs256Secret: SECRET }).verify(wrongSecret));
  });

  it("refuses HS256 signed with the public key (algorithm confusion)", async () => {
    const token = await mintHs256(JSON.stringify(es.publicJwk), { sub: "a" });
    await refusal(verifier(configured(es)).verify(token));
  });

  it("refuses tokens living longer than the maximum lifetime", async () => {
    const token = await es.mint({ sub: "a" }, { iat: now(), exp: now() + 2 * 3600 });
    expect(await refusal(verifier(configured(es)).verify(token))).toMatch(/lifetime exceeds 3600 s/);
    const noIat = await es.mint({ sub: "a" }, { exp: now() + 2 * 3600, omit: ["iat"] });
    await refusal(verifier(configured(es)).verify(noIat));
  });

  it("refuses missing exp or sub, bad subjects, garbage and oversize tokens", async () => {
    const v = verifier(configured(es));
    await refusal(v.verify(await es.mint({ sub: "a" }, { omit: ["exp"] })));
    await refusal(v.verify(await es.mint({}, { omit: ["sub"] })));
    await refusal(v.verify(await es.mint({ sub: "a/b" })));
    expect(await refusal(v.verify("not-a-jwt"))).toBe("malformed bearer token");
    await refusal(v.verify("x".repeat(10_000)));
  });

  it("refuses a disallowed asymmetric algorithm", async () => {
    const rs = await createTestIssuer("RS256");
    const v = verifier(configured(rs), { algorithms: ["ES256"] });
    expect(await refusal(v.verify(await rs.mint({ sub: "a" })))).toMatch(/RS256/);
  });
});

describe("JWKS file rotation", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "jwks-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("picks up a rotated key and drops the retired one", async () => {
    const file = join(dir, "jwks.json");
    const first = await createTestIssuer("ES256", "k1");
    const second = await createTestIssuer("EdDSA", "k2");
    await writeFile(file, JSON.stringify(first.jwks()));
    const warnings: string[] = [];
    const keys = new KeyStore({
      configured: [],
      file,
      reloadIntervalMs: 60_000,
      warn: (m) => warnings.push(m),
    });
    await keys.start();
    const v = verifier(keys);
    expect((await v.verify(await first.mint({ sub: "a" }))).subject).toBe("a");

    // Rotation: the new key appears; an unknown kid triggers a re-read despite the interval.
    await writeFile(file, JSON.stringify({ keys: [first.publicJwk, second.publicJwk] }));
    expect((await v.verify(await second.mint({ sub: "b" }))).subject).toBe("b");

    // Retirement: the old key is removed from the file.
    await writeFile(file, JSON.stringify(second.jwks()));
    const fast = verifier(new KeyStore({ configured: [], file, reloadIntervalMs: 0, warn: () => {} }));
    await refusal(fast.verify(await first.mint({ sub: "a" })));

    // A broken file keeps the previous keys.
    await writeFile(file, "{ half-written");
    expect((await fast.verify(await second.mint({ sub: "b" }))).subject).toBe("b");
  });

  it("does not accept a remembered token once its key is retired from the file", async () => {
    const file = join(dir, "jwks-cache.json");
    const first = await createTestIssuer("ES256", "c1");
    const second = await createTestIssuer("ES256", "c2");
    await writeFile(file, JSON.stringify({ keys: [first.publicJwk, second.publicJwk] }));
    const keys = new KeyStore({ configured: [], file, reloadIntervalMs: 0, warn: () => {} });
    await keys.start();
    const v = verifier(keys);
    const token = await first.mint({ sub: "a" });
    expect((await v.verify(token)).subject).toBe("a");
    expect((await v.verify(token)).subject).toBe("a");
    expect(v.cached).toBe(1);

    await writeFile(file, JSON.stringify(second.jwks()));
    expect(await refusal(v.verify(token))).toBe("token signed with an unknown key");
    expect(v.cached).toBe(0);
    expect((await v.verify(await second.mint({ sub: "b" }))).subject).toBe("b");
  });

  it("fails start-up when the file is missing or not a JWKS", async () => {
    const missing = new KeyStore({
      configured: [],
      file: join(dir, "nope.json"),
      reloadIntervalMs: 0,
      warn: () => {},
    });
    await expect(missing.start()).rejects.toThrow(/JWT_JWKS_FILE/);
    const bad = join(dir, "bad.json");
    await writeFile(bad, JSON.stringify({ kty: "EC" }));
    const store = new KeyStore({ configured: [], file: bad, reloadIntervalMs: 0, warn: () => {} });
    await expect(store.start()).rejects.toThrow(/not a JWKS/);
  });
});

describe("parseConfiguredKeys", () => {
  it("reads PEM public keys and pins their algorithm", async () => {
    const { generateKeyPairSync } = await import("node:crypto");
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({
      type: "spki",
      format: "pem",
    });
    const ed = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" });
    const keys = parseConfiguredKeys(`${rsa}\n${ed}`);
    expect(keys.map((k) => k.alg)).toEqual(["RS256", "EdDSA"]);
  });

  it("refuses symmetric keys and strips private members", () => {
    expect(() => parseConfiguredKeys(JSON.stringify({ kty: "oct", k: "c2VjcmV0" }))).toThrow(/symmetric/);
    const [k] = parseConfiguredKeys(
      JSON.stringify({ kty: "EC", crv: "P-256", x: "x", y: "y", d: "private" }),
    );
    expect(k).not.toHaveProperty("d");
    expect(() => parseConfiguredKeys("garbage")).toThrow(/JWT_PUBLIC_KEYS/);
  });
});
