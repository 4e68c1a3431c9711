/**
 * The gRPC services and methods our contracts declare, read from proto/codex/<pkg>/v1/*.proto
 * with regular expressions (enough for our own, buf-linted files), so the manifests can be
 * checked against what really exists.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./render.js";

export interface ProtoMethod {
  name: string;
  /** Client, server or bidi stream: no route timeout may apply to it. */
  streaming: boolean;
  /** REST path templates of its `google.api.http` rule, e.g. `/v1/projects/{project_id}`. */
  httpPaths: string[];
}

/** Methods by full service name, e.g. `codex.project.v1.ProjectService`. */
export function protoServices(): Map<string, ProtoMethod[]> {
  const services = new Map<string, ProtoMethod[]>();
  const protoDir = join(repoRoot, "proto", "codex");
  for (const pkg of readdirSync(protoDir)) {
    const dir = join(protoDir, pkg, "v1");
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".proto"))) {
      const text = readFileSync(join(dir, file), "utf8").replace(/\/\/.*$/gm, "");
      const pkgName = /^package\s+([\w.]+);/m.exec(text)?.[1];
      for (const m of text.matchAll(/service (\w+)\s*\{/g)) {
        const body = serviceBody(text, (m.index ?? 0) + m[0].length);
        // Each rpc up to the next one: its signature, then its options.
        const rpcs = body.split(/(?=\brpc\s)/).filter((r) => r.startsWith("rpc"));
        services.set(
          `${pkgName}.${m[1]}`,
          rpcs.map((rpc) => {
            const sig = /^rpc\s+(\w+)\s*\(\s*(stream\s+)?[\w.]+\s*\)\s*returns\s*\(\s*(stream\s+)?/.exec(rpc);
            if (!sig) throw new Error(`unreadable rpc in ${file}: ${rpc.slice(0, 60)}`);
            return {
              name: sig[1]!,
              streaming: sig[2] !== undefined || sig[3] !== undefined,
              httpPaths: [...rpc.matchAll(/\b(?:get|put|post|patch|delete):\s*"([^"]+)"/g)].map((h) => h[1]!),
            };
          }),
        );
      }
    }
  }
  return services;
}

/** The text between a service's `{` (just before `start`) and its matching `}`. */
function serviceBody(text: string, start: number): string {
  let depth = 1;
  for (let i = start; i < text.length; i++) {
    if (text[i] === "{") depth++;
    else if (text[i] === "}" && --depth === 0) return text.slice(start, i);
  }
  throw new Error("unbalanced braces in a proto service");
}
