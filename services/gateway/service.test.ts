import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadAuthModule } from "./service.js";

const here = fileURLToPath(new URL(".", import.meta.url));

describe("production wiring", () => {
  it("refuses to start without the auth module, saying so", async () => {
    await expect(loadAuthModule("./auth/not-there.js")).rejects.toThrow(
      /no authenticator configured: services\/gateway\/auth\/not-there\.ts does not exist/,
    );
  });

  it("refuses an auth module that exports no security factory", async () => {
    await expect(loadAuthModule("./config.js")).rejects.toThrow(/must export createGatewaySecurity/);
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
