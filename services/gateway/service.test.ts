import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { gatewayMigrations } from "./auth/index.js";
import { productionGateway } from "./service.js";

const here = fileURLToPath(new URL(".", import.meta.url));

describe("production wiring", () => {
  it("plugs in the real security parts: their settings, the gateway schema and its outbox relay", async () => {
    const def = await productionGateway();
    expect(Object.keys(def.config ?? {})).toEqual(
      expect.arrayContaining(["GATEWAY_GRPC_PORT", "PROJECT_ADDR", "JWT_ISSUER", "JWT_AUDIENCE"]),
    );
    expect(def.migrations).toBe(gatewayMigrations);
    expect(def).toMatchObject({ name: "gateway", redis: true, nats: true });
  });

  it("never imports the test-only security stand-ins outside tests", () => {
    const production = ["service.ts", "main.ts", "config.ts"];
    for (const dir of ["routes", "pipeline", "grpc-proxy", "rest"]) {
      for (const f of readdirSync(join(here, dir)))
        if (!f.endsWith(".test.ts")) production.push(join(dir, f));
    }
    for (const file of production) {
      const text = readFileSync(join(here, file), "utf8");
      expect(text, file).not.toMatch(/testing\/|TestAuthenticator|test-security/);
    }
  });
});
