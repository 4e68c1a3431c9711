import { sep } from "node:path";
import type { DescMessage, FileRegistry } from "@bufbuild/protobuf";
import { createFileRegistry } from "@bufbuild/protobuf";
import type { FileDescriptorSet } from "@bufbuild/protobuf/wkt";
import protobuf from "protobufjs";
import { toFileDescriptorSet } from "./descriptor-from-protobufjs.js";
import type { RuleBook } from "./pgv-rules.js";
import { extractRules } from "./pgv-rules.js";
import { findProtoSources, resolveImport } from "./proto-sources.js";

/** Envoy's v3 API as protobuf-es descriptors: the schema an envoy.yaml is decoded against. */
export interface EnvoyRegistry {
  /** Every loaded type; `fromJson` resolves `@type` URLs in `typed_config` through it. */
  readonly registry: FileRegistry;
  /** `envoy.config.bootstrap.v3.Bootstrap`, the root message of an envoy.yaml. */
  readonly bootstrap: DescMessage;
  /** The same descriptors as a FileDescriptorSet, for tools that want bytes. */
  readonly descriptorSet: FileDescriptorSet;
  /** Shipped v3 files that were not loaded because an import is missing (tracers mostly). */
  readonly skipped: ReadonlyMap<string, string>;
  /** PGV rules read from the protobufjs tree before its options are dropped. */
  readonly rules: RuleBook;
}

const BOOTSTRAP = "envoy.config.bootstrap.v3.Bootstrap";

let cached: EnvoyRegistry | undefined;

/**
 * Loads the registry once per process (about a second: ~350 files parsed, converted and
 * registered), then serves it from memory.
 *
 * Parsing is done by protobufjs because it tolerates the option fields the bundled, older PGV
 * `validate.proto` does not declare — the reason `buf`/`protoc` refuse these files. protobufjs,
 * however, is lenient when decoding JSON, so its tree is converted to a descriptor set and handed
 * to protobuf-es, whose `fromJson` is strict.
 */
export function loadEnvoyRegistry(): EnvoyRegistry {
  cached ??= buildRegistry();
  return cached;
}

function buildRegistry(): EnvoyRegistry {
  const sources = findProtoSources();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => resolveImport(sources.includeDirs, target) ?? null;
  root.loadSync([...sources.entryFiles], { keepCase: true });
  const relativize = (path: string): string => {
    for (const dir of sources.includeDirs) {
      if (path.startsWith(dir + sep))
        return path
          .slice(dir.length + 1)
          .split(sep)
          .join("/");
    }
    throw new Error(`${path} is outside the Envoy API import roots`);
  };
  const descriptorSet = toFileDescriptorSet(root, relativize);
  const registry = createFileRegistry(descriptorSet);
  const bootstrap = registry.getMessage(BOOTSTRAP);
  if (bootstrap === undefined) throw new Error(`${BOOTSTRAP} is missing from the Envoy API protos`);
  return { registry, bootstrap, descriptorSet, skipped: sources.skipped, rules: extractRules(root) };
}
