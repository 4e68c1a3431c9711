import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, sep } from "node:path";

/**
 * Where Envoy's API protos come from: the copies `@grpc/grpc-js-xds` ships in its `deps/` folder.
 * Nothing third-party is committed to this repository; the files are read from node_modules at
 * run time, so upgrading that package upgrades the schema we validate against.
 */
export interface ProtoSources {
  /** Import roots, searched in order, exactly as `protoc -I` would. */
  readonly includeDirs: readonly string[];
  /** Envoy v3 API files (relative to an import root) whose whole import closure is present. */
  readonly entryFiles: readonly string[];
  /** Files left out because something they import is not shipped, with the first missing import. */
  readonly skipped: ReadonlyMap<string, string>;
}

const requireFromHere = createRequire(import.meta.url);

/**
 * Extra entry points outside `envoy/`: the typed-struct wrappers that may appear as an `@type`
 * in any `typed_config`.
 */
const EXTRA_ENTRIES = ["xds/type/v3/typed_struct.proto", "udpa/type/v1/typed_struct.proto"];

const IMPORT_RE = /^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm;

/** Locates the shipped protos and chooses the entry files; throws if the package is missing. */
export function findProtoSources(): ProtoSources {
  const xdsRoot = dirname(requireFromHere.resolve("@grpc/grpc-js-xds/package.json"));
  const deps = join(xdsRoot, "deps");
  // protobufjs carries google/protobuf/descriptor.proto, which Envoy's annotation files import.
  const protobufjsRoot = dirname(requireFromHere.resolve("protobufjs/package.json"));
  const includeDirs = [
    join(deps, "envoy-api"),
    join(deps, "xds"),
    join(deps, "googleapis"),
    join(deps, "protoc-gen-validate"),
    protobufjsRoot,
  ];
  for (const dir of includeDirs) {
    if (!existsSync(dir)) throw new Error(`Envoy API protos not found: ${dir} is missing`);
  }
  const envoyRoot = includeDirs[0]!;
  const candidates = listProtoFiles(join(envoyRoot, "envoy"))
    .map((file) => relative(envoyRoot, file).split(sep).join("/"))
    .filter((file) => file.includes("/v3/"))
    .concat(EXTRA_ENTRIES);
  const closure = new ImportClosure(includeDirs);
  const entryFiles: string[] = [];
  const skipped = new Map<string, string>();
  for (const file of candidates) {
    const missing = closure.firstMissing(file);
    if (missing === undefined) entryFiles.push(file);
    else skipped.set(file, missing);
  }
  return { includeDirs, entryFiles, skipped };
}

/** Finds a proto file below the import roots, as protoc does; `undefined` when absent. */
export function resolveImport(includeDirs: readonly string[], file: string): string | undefined {
  for (const dir of includeDirs) {
    const candidate = join(dir, file);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

function listProtoFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listProtoFiles(path));
    else if (entry.name.endsWith(".proto")) out.push(path);
  }
  return out.sort();
}

/**
 * The shipped API is a subset: a few v3 files import OpenCensus, OpenTelemetry or Prometheus
 * protos that are not in the package. A plain scan of `import` lines finds them before the parser
 * would fail, so one absent tracer cannot stop us validating everything else.
 */
class ImportClosure {
  readonly #missing = new Map<string, string | undefined>();

  constructor(private readonly includeDirs: readonly string[]) {}

  firstMissing(file: string, visiting: Set<string> = new Set()): string | undefined {
    if (this.#missing.has(file)) return this.#missing.get(file);
    if (file.startsWith("google/protobuf/")) return undefined;
    if (visiting.has(file)) return undefined;
    visiting.add(file);
    const path = resolveImport(this.includeDirs, file);
    let result: string | undefined;
    if (path === undefined) {
      result = file;
    } else {
      for (const match of readFileSync(path, "utf8").matchAll(IMPORT_RE)) {
        result = this.firstMissing(match[1]!, visiting);
        if (result !== undefined) break;
      }
    }
    this.#missing.set(file, result);
    return result;
  }
}
