/** A list's page sizes, as its contract states them. */
export interface PageSizes {
  /** Used when the request leaves page_size 0 (or, leniently, negative). */
  default: number;
  /** Larger requests are cut to this, not refused (AIP-158). */
  max: number;
}

/**
 * The number of rows to return for a requested page_size. Refusing a negative size is the
 * caller's choice (most report it as a field violation first); this only clamps.
 */
export function clampPageSize(requested: number, sizes: PageSizes): number {
  if (requested <= 0) return sizes.default;
  return Math.min(requested, sizes.max);
}
