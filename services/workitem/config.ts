import { type ConfigSpec, durationMs, int, str } from "../../mesh/config.js";

/** Settings of the workitem service, parsed once at start-up (see mesh/config.ts). */
export const workitemConfigSpec = {
  /**
   * Largest gRPC message. Artifact chunks are at most 1 MiB and recipes at most 256 KiB, so
   * 1 MiB plus room for the envelope keeps any one message (and so any one buffer) small.
   */
  GRPC_MAX_MESSAGE_BYTES: int({ min: 64 * 1024, default: 1024 * 1024 + 64 * 1024 }),
  /** Largest artifact accepted (expected_size), bytes. */
  ARTIFACT_MAX_BYTES: int({ min: 1, default: 512 * 1024 * 1024 }),
  /**
   * NATS Object Store bucket holding artifact content; empty derives it from the subject
   * prefix (`<prefix>_artifacts`) so every environment and test run has its own.
   */
  ARTIFACT_BUCKET: str({ default: "", pattern: /^([A-Za-z0-9_-]{1,64})?$/ }),
  /** Size of the Object Store chunks artifact content is written in. */
  ARTIFACT_CHUNK_BYTES: int({ min: 16 * 1024, max: 1024 * 1024, default: 256 * 1024 }),
  /** Temporary upload objects older than this are removed by the janitor (crashed uploads). */
  ARTIFACT_TEMP_MAX_AGE: durationMs({ default: "1h", min: 1000 }),
  /** Agent manager replicas (comma-separated), asked whether an uploading agent holds its run. */
  AGENT_MANAGER_ADDR: str({ default: "127.0.0.1:50055" }),
  /** How long a call to another service may take. */
  DOWNSTREAM_TIMEOUT: durationMs({ default: "5s", min: 50 }),
  /** How often expired approval requests and idempotency keys are swept. */
  SWEEP_INTERVAL: durationMs({ default: "30s", min: 50 }),
} satisfies ConfigSpec;

export type WorkitemConfigSpec = typeof workitemConfigSpec;
