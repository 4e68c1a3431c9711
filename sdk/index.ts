/**
 * Codex Orchestrator agent SDK: build an agent that registers, holds the Connect stream with
 * heartbeats, executes assignments through a typed handler, streams logs, asks people for
 * inputs, uploads artifacts, completes runs and shuts down gracefully. See sdk/README.md.
 */
export { RunStopped, type StopKind } from "./active-run.js";
export { type FailureAction, type GradedFailure, gradeFailure } from "./failure.js";
export { isTerminal, type WorkerState } from "./lifecycle.js";
export type { RunSettlement } from "./run-table.js";
export { handleSignals, type SignalOptions } from "./signals.js";
export * from "./types.js";
export { AgentWorker, type AgentWorkerOptions } from "./worker.js";
