/**
 * Every size and count limit of the Project API in one place, as the proto comments state
 * them. Validation, pagination and the store all read from here, so the contract and the
 * code cannot drift apart silently.
 */
export const LIMITS = {
  /** `^[a-z][a-z0-9-]*[a-z0-9]$`, 3–63 characters (project.proto). */
  nameMin: 3,
  nameMax: 63,
  displayNameMax: 200,
  descriptionMax: 4_000,
  labelsMax: 64,
  labelKeyMax: 63,
  labelValueMax: 63,
  archiveReasonMax: 1_000,
  principalIdMax: 256,
  membersMax: 1_000,
  visionFieldMax: 20_000,
  requirementsContentMax: 100_000,
  decisionReasonMax: 2_000,
  reservationKeyMax: 200,
  workItemIdMax: 256,
  runsPerDayMax: 1_000_000,
  maxConcurrentRunsMax: 10_000,
  /** Reservation TTL bounds and default (quota.proto). */
  ttlMinMs: 60_000,
  ttlMaxMs: 48 * 3_600_000,
  ttlDefaultMs: 6 * 3_600_000,
  /** Idempotency keys are honoured for this long. */
  requestIdRetentionMs: 24 * 3_600_000,
} as const;

/** Page sizes per list RPC: the default when 0 and the cap above which values are clamped. */
export const PAGE_SIZES = {
  projects: { default: 50, max: 500 },
  members: { default: 50, max: 500 },
  visions: { default: 20, max: 100 },
  requirements: { default: 20, max: 100 },
} as const;

export const PROJECT_NAME = /^[a-z][a-z0-9-]*[a-z0-9]$/;
export const LABEL_KEY = /^[a-z][a-z0-9_-]*$/;
export const LABEL_VALUE = /^[a-z0-9_-]*$/;
/** No `/`, so it fits in a URL path segment (member.proto). */
export const PRINCIPAL_ID = /^[A-Za-z0-9._@|:+-]+$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
