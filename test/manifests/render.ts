/**
 * Builds the manifests the way operators do (`kubectl kustomize`, offline) and lints the YAML
 * files they are built from.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** One rendered object; only the fields every test reads are typed. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: rendered YAML; each test narrows what it reads.
  spec?: any;
  [key: string]: unknown;
}

/**
 * Runs `kubectl kustomize <dir>` and parses its output. A build failure throws with kubectl's
 * own message, which names the file and field at fault.
 */
export function kustomize(dir: string): Manifest[] {
  let out: string;
  try {
    out = execFileSync("kubectl", ["kustomize", join(repoRoot, dir)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === "ENOENT") throw new Error("kubectl not found: install Debian's kubectl (client only)");
    throw new Error(`kubectl kustomize ${dir} failed:\n${err.stderr || err.message}`);
  }
  return parseAllDocuments(out).map((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`document ${i} of ${dir}: ${doc.errors[0]?.message}`);
    return doc.toJS() as Manifest;
  });
}

/** Every *.yaml / *.yml file under `dir`, relative to the repository root. */
export function yamlFiles(dir: string): string[] {
  const abs = join(repoRoot, dir);
  return readdirSync(abs, { recursive: true, encoding: "utf8" })
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => relative(repoRoot, join(abs, f)))
    .sort();
}

/**
 * yamllint's errors, without yamllint: syntax errors, duplicate keys (yaml's `uniqueKeys`, on
 * by default, made explicit here) and tabs. Returns one line per problem.
 */
export function lintYaml(file: string): string[] {
  const text = readFileSync(join(repoRoot, file), "utf8");
  const problems = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true, strict: true }).flatMap(
    (doc) => [...doc.errors, ...doc.warnings].map((e) => `${file}: ${e.message}`),
  );
  text.split("\n").forEach((line, i) => {
    if (/^\s*\t/.test(line)) problems.push(`${file}:${i + 1}: tab in indentation`);
    if (/\s+$/.test(line)) problems.push(`${file}:${i + 1}: trailing spaces`);
  });
  return problems;
}
