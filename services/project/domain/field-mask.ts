import type { Violations } from "./validation.js";

/** Paths UpdateProject accepts; `labels` replaces the whole map. */
export const PROJECT_MUTABLE_PATHS = ["display_name", "description", "labels"] as const;
export type ProjectPath = (typeof PROJECT_MUTABLE_PATHS)[number];

/**
 * Checks an update mask against the allowed paths. An empty mask is refused rather than
 * read as "replace everything": a client built against an older schema would otherwise
 * wipe fields it does not know. Returns the distinct paths in request order.
 */
export function checkUpdateMask(v: Violations, paths: readonly string[]): ProjectPath[] {
  if (paths.length === 0) {
    v.add("update_mask", "must name at least one path: display_name, description, labels");
    return [];
  }
  const out: ProjectPath[] = [];
  paths.forEach((p, i) => {
    if (!(PROJECT_MUTABLE_PATHS as readonly string[]).includes(p)) {
      v.add(
        `update_mask.paths[${i}]`,
        `unknown or immutable path "${p}"; allowed: display_name, description, labels`,
      );
    } else if (!out.includes(p as ProjectPath)) {
      out.push(p as ProjectPath);
    }
  });
  return out;
}

/** The mutable project fields. */
export interface ProjectFields {
  displayName: string;
  description: string;
  labels: Record<string, string>;
}

/**
 * Applies the masked fields of `patch` to `current`; returns the result and the paths whose
 * value actually changed (for the ProjectUpdated event).
 */
export function applyProjectMask(
  current: ProjectFields,
  patch: ProjectFields,
  paths: readonly ProjectPath[],
): { next: ProjectFields; changed: ProjectPath[] } {
  const next: ProjectFields = { ...current, labels: { ...current.labels } };
  const changed: ProjectPath[] = [];
  for (const path of paths) {
    switch (path) {
      case "display_name":
        next.displayName = patch.displayName;
        if (next.displayName !== current.displayName) changed.push(path);
        break;
      case "description":
        next.description = patch.description;
        if (next.description !== current.description) changed.push(path);
        break;
      case "labels":
        next.labels = { ...patch.labels };
        if (!sameLabels(next.labels, current.labels)) changed.push(path);
        break;
    }
  }
  return { next, changed };
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && b[k] === a[k]);
}
