/**
 * Writes deploy/envoy/envoy.yaml from the route table and the buf image of our protos, after
 * validating it against Envoy's API protos — an invalid config is never written.
 *
 *   npx tsx scripts/envoy-generate.ts                  # regenerate the committed file
 *   npx tsx scripts/envoy-generate.ts --check          # exit 1 if the committed file is stale
 *   npx tsx scripts/envoy-generate.ts --descriptor-out /etc/envoy/codex.binpb
 *                                                      # also write the transcoder's descriptor set
 *
 * Why a check: the front door follows the protos, which other people change. CI runs `--check`
 * so a new REST annotation cannot ship without the Envoy config that exposes it.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { generateEnvoyConfig, renderEnvoyYaml } from "../services/gateway/envoy/generate.js";
import {
  buildProtoImage,
  decodeProtoImage,
  findPublicServices,
} from "../services/gateway/envoy/proto-image.js";
import { validateEnvoyConfig } from "../services/gateway/envoy/validate.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    check: { type: "boolean", default: false },
    out: { type: "string", default: join(repoRoot, "deploy/envoy/envoy.yaml") },
    "descriptor-out": { type: "string" },
  },
});

function main(): number {
  const image = buildProtoImage(repoRoot);
  const services = findPublicServices(decodeProtoImage(image));
  const yaml = renderEnvoyYaml(generateEnvoyConfig({ services }));
  const result = validateEnvoyConfig(yaml);
  if (!result.ok) {
    console.error(`generated Envoy config is invalid:\n  ${result.errors.join("\n  ")}`);
    return 1;
  }
  const out = values.out;
  const shown = relative(repoRoot, out);
  if (values.check) {
    const committed = readOrEmpty(out);
    if (committed === yaml) {
      console.log(`${shown} is up to date (${services.length} public services)`);
      return 0;
    }
    console.error(`${shown} is stale: ${firstDifference(committed, yaml)}`);
    console.error("run: npx tsx scripts/envoy-generate.ts");
    return 1;
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, yaml);
  console.log(`wrote ${shown}: ${services.map((s) => s.typeName).join(", ")}`);
  const descriptorOut = values["descriptor-out"];
  if (descriptorOut !== undefined) {
    mkdirSync(dirname(descriptorOut), { recursive: true });
    writeFileSync(descriptorOut, image);
    console.log(`wrote ${descriptorOut} (${image.length} bytes)`);
  }
  return 0;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function firstDifference(committed: string, fresh: string): string {
  if (committed === "") return "missing";
  const a = committed.split("\n");
  const b = fresh.split("\n");
  const line = a.findIndex((text, i) => text !== b[i]);
  const at = line === -1 ? a.length : line;
  return `line ${at + 1}: committed ${JSON.stringify(a[at] ?? "<end>")}, generated ${JSON.stringify(b[at] ?? "<end>")}`;
}

process.exitCode = main();
