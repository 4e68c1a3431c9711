/**
 * The SDK's public vocabulary: how to reach the control plane, who the agent is, what a handler
 * receives and what it returns. Generated protobuf types are re-used where agents need the full
 * picture (the run, the work item snapshot, artifacts) rather than copied into look-alikes.
 */

import type { Run, WorkItemSnapshot } from "../gen/codex/agentmanager/v1/run_pb.js";
import type { Artifact } from "../gen/codex/workitem/v1/artifact_pb.js";
import type { LogStreamName } from "./log-buffer.js";

export type { Artifact, LogStreamName, Run, WorkItemSnapshot };

/**
 * How to reach the control plane. Agents normally talk to the gateway with a credential it
 * accepts (an agent API key, or an agent JWT); inside the mesh (tests, benchmarks, co-located
 * agents) they may talk to the services directly and sign a mesh principal instead.
 */
export interface ConnectionOptions {
  /** Gateway address `host:port` (or the agent manager's, for direct connections). */
  address: string | string[];
  /** Where WorkItemService (artifact upload) is served; defaults to `address` (the gateway serves both). */
  artifactAddress?: string | string[];
  /**
   * Credential sent as `authorization: Bearer …` on every call: an API key (`cdx_…`) with the
   * agent role, or an agent JWT. Directly to the agent manager, a registration key it accepts.
   */
  credentials?: { apiKey: string } | { bearerToken: string };
  /** Mesh secret (MESH_SECRET): signs an agent principal, for direct connections only. */
  meshSecret?: string;
  /** Deadline of unary calls (registration, artifact upload), ms; default 10 000 (uploads: 10 min). */
  callTimeoutMs?: number;
}

/** What the agent announces at registration; matched against run selectors and recipe tools. */
export interface AgentIdentity {
  /** Unique, 1–63 characters of [a-z0-9.-]; re-registering a name keeps its agent id. */
  name: string;
  labels?: Record<string, string>;
  capabilities?: { name: string; versions?: string[] }[];
  os?: string;
  region?: string;
  /** Concurrent runs, 1–256. */
  capacity: number;
  /** Agent software version. */
  version?: string;
}

/** Bounded reconnect: consecutive failed attempts before FAILED, with full-jitter backoff. */
export interface ReconnectOptions {
  /** Consecutive attempts (registration or stream) before giving up; reset by each Welcome. */
  maxAttempts: number;
  baseMs: number;
  capMs: number;
}

/** Graceful shutdown timing (see AgentWorker.stop). */
export interface ShutdownOptions {
  /** Time in-flight runs get to finish before they are handed back. */
  graceMs: number;
  /** Hard limit from the signal: the process exits with 1 if stopping has not finished. */
  forceMs: number;
}

/** A run handed to this agent. */
export interface Assignment {
  runId: string;
  /** The lease's fencing token; the SDK sends it with every message about the run. */
  fencingToken: bigint;
  /** Attempt number within the task (1 for the first run). */
  attempt: number;
  /** W3C trace id of the run's trace. */
  traceId: string;
  /** What to do: title, description, environment, labels and the recipe, frozen at enqueue. */
  workItem: WorkItemSnapshot;
  /** The run as the manager sent it. */
  run: Run;
}

/** One input asked of a person mid-run. */
export interface InfoFieldSpec {
  /** Key the value is returned under, 1–63 characters of [A-Za-z0-9_]. */
  name: string;
  description?: string;
  /** UIs mask it; every answer is handled as a secret either way. */
  secret?: boolean;
}

/** What a handler gets besides the assignment. */
export interface RunContext {
  /** Aborted when the run is cancelled, its lease is lost, or the worker hands it back. */
  readonly signal: AbortSignal;
  /** Appends output to the run's log (batched; a newline is added when missing). */
  log(stream: LogStreamName, text: string): void;
  /** Reports the step now executing (0-based); later log lines are tagged with it. */
  setStep(index: number): void;
  /** Asks a person for inputs and resolves with the answers. Values are secrets: never log them. */
  requestInfo(fields: InfoFieldSpec[], opts?: { reason?: string }): Promise<Record<string, string>>;
  /** Uploads a file produced by the run (content-addressed; retried while the backend is unavailable). */
  uploadArtifact(
    name: string,
    contentType: string,
    data: AsyncIterable<Uint8Array> | Uint8Array | string,
  ): Promise<Artifact>;
}

/** How a handler's run ended when it returns normally (default: SUCCEEDED). */
export interface RunResult {
  status?: "SUCCEEDED" | "FAILED" | "CANCELLED";
  /** Exit code of the last step executed. */
  exitCode?: number;
  /** For FAILED or CANCELLED, up to 4 KiB. */
  error?: string;
}

/**
 * Handles one assignment. Returning completes the run (SUCCEEDED unless the result says
 * otherwise); throwing completes it FAILED with the error's message (and `exitCode` when the
 * error is a {@link RunFailure}); a cancelled run completes CANCELLED whatever the handler does.
 */
export type AssignmentHandler = (
  run: Assignment,
  ctx: RunContext,
  // biome-ignore lint/suspicious/noConfusingVoidType: an async handler that returns nothing succeeds.
) => Promise<RunResult | undefined | void>;

/** Throw to fail a run with an exit code. */
export class RunFailure extends Error {
  override readonly name = "RunFailure";
  constructor(
    message: string,
    readonly exitCode?: number,
  ) {
    super(message);
  }
}

/** Minimal logger the SDK writes to (pino-compatible). Never receives secrets. */
export interface SdkLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
