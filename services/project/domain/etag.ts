import { createHash } from "node:crypto";

/**
 * Etags are derived from a per-row version counter that every write increments. The tag
 * hashes the resource kind and id with the version, so it is opaque (callers cannot forge
 * "the next" tag or reuse one across resources) while the server only stores an integer.
 */
export function etagOf(kind: string, id: string, version: bigint): string {
  const digest = createHash("sha256").update(`${kind}\0${id}\0${version}`).digest("base64url");
  return `"${digest.slice(0, 22)}"`;
}

/** True when `given` is empty (unconditional) or names exactly the current version. */
export function etagMatches(given: string, kind: string, id: string, version: bigint): boolean {
  return given === "" || given === etagOf(kind, id, version);
}
