/**
 * Bounds that keep recipe parsing cheap whatever the input. Recipes arrive from users and
 * other programs over the API, so every dimension an attacker could inflate (bytes, nesting,
 * list lengths, string sizes, even the number of problems we report back) has a ceiling.
 */
export interface RecipeLimits {
  /** Largest accepted input, in UTF-8 bytes; checked before any parsing. */
  readonly maxBytes: number;
  /** Deepest accepted nesting of collections; the YAML composer recurses per level. */
  readonly maxDepth: number;
  /**
   * Most entries in any one list or map, enforced while parsing. Besides bounding work, it
   * keeps the YAML library's duplicate-key check (quadratic in a map's size) cheap.
   */
  readonly maxEntries: number;
  readonly maxTools: number;
  readonly maxSteps: number;
  /** Largest accepted single string (key or value), in UTF-8 bytes. */
  readonly maxStringBytes: number;
  /** Longest step timeout. */
  readonly maxTimeoutMs: number;
  /** Problems reported before giving up, so a hostile input cannot make the answer huge. */
  readonly maxProblems: number;
}

export const DEFAULT_RECIPE_LIMITS: RecipeLimits = Object.freeze({
  maxBytes: 256 * 1024,
  maxDepth: 32,
  maxEntries: 512,
  maxTools: 64,
  maxSteps: 256,
  maxStringBytes: 16 * 1024,
  maxTimeoutMs: 24 * 60 * 60 * 1000,
  maxProblems: 100,
});

/** Fills unspecified limits from {@link DEFAULT_RECIPE_LIMITS}. */
export function resolveLimits(overrides: Partial<RecipeLimits> = {}): RecipeLimits {
  return { ...DEFAULT_RECIPE_LIMITS, ...overrides };
}
