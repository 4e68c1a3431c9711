import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFileRegistry, fromBinary, hasOption } from "@bufbuild/protobuf";
import type { FileDescriptorSet } from "@bufbuild/protobuf/wkt";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

/** A gRPC service the front door exposes: gRPC by its path prefix, REST through the transcoder. */
export interface PublicService {
  /** Fully qualified name, `codex.project.v1.ProjectService`. */
  readonly typeName: string;
  readonly package: string;
  /** Short name, `ProjectService`. */
  readonly name: string;
  /**
   * Methods whose requests stream (client or bidi streaming), by short name: ext_authz must not
   * wait for their body, which ends only when the call does.
   */
  readonly streamingRequests: readonly string[];
}

const requireFromHere = createRequire(import.meta.url);

/**
 * Compiles our contracts with buf (the same workspace `buf generate` uses) into a
 * FileDescriptorSet with imports and without source info — exactly the `proto_descriptor` file
 * Envoy's gRPC-JSON transcoder loads. The workspace build, not just `proto/`, is used so the
 * `google.rpc` detail types are in it: the transcoder needs them to render error details as JSON.
 */
export function buildProtoImage(repoRoot: string): Uint8Array {
  const buf = requireFromHere.resolve("@bufbuild/buf/bin/buf");
  const dir = mkdtempSync(join(tmpdir(), "codex-envoy-"));
  try {
    const out = join(dir, "codex.binpb");
    const args = ["build", "--as-file-descriptor-set", "--exclude-source-info", "-o", out];
    execFileSync(process.execPath, [buf, ...args], { cwd: repoRoot, stdio: ["ignore", "ignore", "pipe"] });
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function decodeProtoImage(bytes: Uint8Array): FileDescriptorSet {
  return fromBinary(FileDescriptorSetSchema, bytes);
}

/**
 * Our services (package `codex.*`) with at least one `google.api.http`-annotated method, sorted
 * by name. Reading this from the compiled protos, not from a list, keeps the front door in step
 * with the contracts: annotate a method and its service becomes reachable (once the route table
 * names its deployable); remove the last annotation and it disappears.
 */
export function findPublicServices(set: FileDescriptorSet): PublicService[] {
  const registry = createFileRegistry(set);
  const http = registry.getExtension("google.api.http");
  if (http === undefined) return []; // nothing imports google/api/annotations.proto
  const services: PublicService[] = [];
  for (const file of registry.files) {
    if (!file.proto.package.startsWith("codex.")) continue;
    for (const service of file.services) {
      if (!service.methods.some((method) => hasOption(method, http))) continue;
      services.push({
        typeName: service.typeName,
        package: file.proto.package,
        name: service.name,
        streamingRequests: service.methods
          .filter((m) => m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming")
          .map((m) => m.name),
      });
    }
  }
  return services.sort((a, b) => a.typeName.localeCompare(b.typeName));
}
