import { readdir } from "node:fs/promises";
import { createRegistry, type DescFile, type DescMessage, type Registry } from "@bufbuild/protobuf";

/**
 * Every event payload message of `gen/codex/events/v1/*_pb.ts`, for unpacking envelope
 * payloads into JSON that templates and alert rules read.
 *
 * Why the directory is read at start-up instead of importing each file: this service must
 * render events of every other service, and a new events file (or one another team adds)
 * should be picked up by regenerating `gen/` alone, with no list here to forget. The files
 * are the generated modules themselves (`.ts` under tsx/vitest, `.js` once built), so nothing
 * is loaded that the build did not produce. A payload of a type missing here is still
 * delivered (envelope fields render; `payload.*` renders empty).
 */
const EVENTS_DIR = new URL("../../../gen/codex/events/v1/", import.meta.url);
const GENERATED = /^[a-z0-9_]+_pb\.(ts|js)$/;

function isDescFile(v: unknown): v is DescFile {
  return typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === "file";
}

/** Loads the registry; fails loudly when the directory holds no events at all. */
export async function loadEventRegistry(dir: URL = EVENTS_DIR): Promise<Registry> {
  const names = (await readdir(dir)).filter((n) => GENERATED.test(n));
  // Prefer .js when both exist (a build next to sources), and never load one module twice.
  const byStem = new Map<string, string>();
  for (const n of names.sort()) byStem.set(n.replace(/\.(ts|js)$/, ""), n);
  const files: DescFile[] = [];
  for (const name of byStem.values()) {
    const mod = (await import(new URL(name, dir).href)) as Record<string, unknown>;
    for (const value of Object.values(mod)) if (isDescFile(value)) files.push(value);
  }
  if (files.length === 0) throw new Error(`no generated event files found in ${dir.pathname}`);
  return createRegistry(...files);
}

/** The message descriptor of an event type, if known. */
export function eventMessage(registry: Registry, type: string): DescMessage | undefined {
  return registry.getMessage(type);
}
