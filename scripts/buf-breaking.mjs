#!/usr/bin/env node
// Checks proto/ for breaking changes against the contract baseline: the main that last landed,
// recorded as a commit hash in .ci/buf-baseline (see docs/adr/0001-stack.md, "Contracts").
// BUF_BREAKING_AGAINST overrides it with another commit.
//
// The baseline is rebuilt from `git archive` of that commit into a temp dir that borrows this
// checkout's node_modules (the google/api protos come from npm, not from git), so buf sees the
// old contract exactly as it was.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const file = ".ci/buf-baseline";
const ref = process.env.BUF_BREAKING_AGAINST ?? (existsSync(file) ? readFileSync(file, "utf8").trim() : "");
if (!ref) {
  console.log("buf breaking: no baseline recorded yet, nothing to compare against");
  process.exit(0);
}
try {
  execFileSync("git", ["cat-file", "-e", `${ref}^{commit}`], { stdio: "ignore" });
} catch {
  console.error(`buf breaking: baseline ${ref} is not in this clone's history`);
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), "codex-baseline-"));
try {
  execFileSync("sh", ["-c", `git archive ${ref} buf.yaml proto | tar -x -C ${dir}`]);
  symlinkSync(resolve("node_modules"), join(dir, "node_modules"));
  const image = join(dir, "baseline.binpb");
  execFileSync("npx", ["buf", "build", dir, "-o", image], { stdio: "inherit" });
  const current = join(dir, "current.binpb");
  execFileSync("npx", ["buf", "build", "-o", current], { stdio: "inherit" });
  // Only our own files are compared; google/* comes from npm and is not ours to keep stable.
  const exclude = ["--exclude-path", "node_modules"];
  execFileSync("npx", ["buf", "breaking", current, "--against", image, ...exclude], { stdio: "inherit" });
  console.log(`buf breaking: no breaking change against ${ref}`);
} catch {
  console.error(`buf breaking: proto/ breaks the contract of ${ref} (or the baseline did not build)`);
  process.exit(1);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
