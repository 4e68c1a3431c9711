#!/usr/bin/env node
// Fails when gen/ is not exactly what `buf generate` makes from proto/ (someone edited gen/ by
// hand or forgot to regenerate after changing a contract).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const out = mkdtempSync(join(tmpdir(), "codex-gen-"));
try {
  execFileSync("npx", ["buf", "generate", "--template", "buf.gen.yaml", "-o", out], { stdio: "inherit" });
  try {
    execFileSync("diff", ["-r", join(out, "gen"), "gen"], { stdio: "inherit" });
  } catch {
    console.error("gen/ is stale: run `npm run generate` and commit the result.");
    process.exit(1);
  }
  console.log("gen/ is in sync with proto/");
} finally {
  rmSync(out, { recursive: true, force: true });
}
