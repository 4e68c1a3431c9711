import { type ConfigSpec, int } from "../../mesh/config.js";

/** The project service's own settings (on top of the host's), checked once at start-up. */
export const projectConfigSpec = {
  /** runs_per_day of projects that never had SetQuota called (0 = unlimited). */
  DEFAULT_RUNS_PER_DAY: int({ min: 0, max: 1_000_000, default: 100 }),
  /** max_concurrent_runs of projects that never had SetQuota called (0 = unlimited). */
  DEFAULT_MAX_CONCURRENT_RUNS: int({ min: 0, max: 10_000, default: 10 }),
  /** ACTIVE projects one user may create (CreateProject answers RESOURCE_EXHAUSTED beyond). */
  MAX_PROJECTS_PER_PRINCIPAL: int({ min: 1, max: 100_000, default: 100 }),
  /** RetryInfo delay sent when max_concurrent_runs refuses a reservation. */
  QUOTA_CONCURRENCY_RETRY_MS: int({ min: 100, max: 600_000, default: 5_000 }),
} satisfies ConfigSpec;
