/**
 * One run this agent holds: its abort signal, log buffer, step, pending info requests, and why
 * it stopped early if it did. It is the `ctx` a handler receives; the worker drives its
 * completion (see worker.ts), so a handler only ever returns or throws.
 */
import { randomUUID } from "node:crypto";
import { RunState } from "../gen/codex/agentmanager/v1/run_pb.js";
import type { Artifact } from "../gen/codex/workitem/v1/artifact_pb.js";
import type { LogStreamName } from "./log-buffer.js";
import { RunLogBuffer } from "./log-buffer.js";
import type { Entry } from "./outbound.js";
import type { Assignment, InfoFieldSpec, RunContext } from "./types.js";

/** What a run needs from its worker. */
export interface RunHost {
  send(entry: Entry): void;
  logsWritten(run: ActiveRun): void;
  upload(
    run: ActiveRun,
    name: string,
    contentType: string,
    data: AsyncIterable<Uint8Array> | Uint8Array | string,
  ): Promise<Artifact>;
}

/** Why a run stopped before its handler finished on its own. */
export type StopKind = "cancel" | "lease-lost" | "hand-back";

/** The error a run's signal is aborted with. */
export class RunStopped extends Error {
  override readonly name = "RunStopped";
  constructor(
    readonly kind: StopKind,
    reason: string,
  ) {
    super(reason);
  }
}

export class ActiveRun implements RunContext {
  readonly logs: RunLogBuffer;
  /** "running" until the handler settles, "completing" until the manager acknowledged the outcome. */
  phase: "running" | "completing" = "running";
  readonly #abort = new AbortController();
  #stop: RunStopped | undefined;
  #step = 0;
  readonly #infoWaiters = new Map<
    string,
    { resolve(v: Record<string, string>): void; reject(e: Error): void }
  >();

  constructor(
    readonly assignment: Assignment,
    private readonly host: RunHost,
    maxLogBufferBytes: number,
  ) {
    this.logs = new RunLogBuffer(assignment.fencingToken, maxLogBufferBytes);
  }

  get runId(): string {
    return this.assignment.runId;
  }

  get token(): bigint {
    return this.assignment.fencingToken;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Why the run was stopped early, if it was. */
  get stopped(): RunStopped | undefined {
    return this.#stop;
  }

  log(stream: LogStreamName, text: string): void {
    if (this.#stop?.kind === "lease-lost") return;
    this.logs.append(stream, text, this.#step);
    this.host.logsWritten(this);
  }

  setStep(index: number): void {
    this.#step = index;
    this.reportRunning();
  }

  /** Tells the manager the run is RUNNING at the current step. */
  reportRunning(): void {
    if (this.#stop) return;
    this.host.send({
      runId: this.runId,
      payload: {
        case: "runStatus",
        value: {
          runId: this.runId,
          fencingToken: this.token,
          state: RunState.RUNNING,
          currentStep: this.#step,
        },
      },
    });
  }

  requestInfo(fields: InfoFieldSpec[], opts: { reason?: string } = {}): Promise<Record<string, string>> {
    if (this.#stop) return Promise.reject(this.#stop);
    const requestId = randomUUID();
    return new Promise((resolve, reject) => {
      this.#infoWaiters.set(requestId, { resolve, reject });
      this.host.send({
        runId: this.runId,
        payload: {
          case: "infoRequest",
          value: {
            requestId,
            runId: this.runId,
            fencingToken: this.token,
            reason: opts.reason ?? "",
            fields: fields.map((f) => ({
              name: f.name,
              description: f.description ?? "",
              secret: f.secret ?? false,
            })),
          },
        },
      });
    });
  }

  /** An answer arrived; resolves the matching requestInfo. Returns false when none waits. */
  answer(requestId: string, values: Record<string, string>): boolean {
    const waiter = this.#infoWaiters.get(requestId);
    if (!waiter) return false;
    this.#infoWaiters.delete(requestId);
    waiter.resolve({ ...values });
    return true;
  }

  /** The manager refused an info request. */
  refuseInfo(requestId: string, message: string): void {
    const waiter = this.#infoWaiters.get(requestId);
    this.#infoWaiters.delete(requestId);
    waiter?.reject(new Error(`info request refused: ${message}`));
  }

  uploadArtifact(
    name: string,
    contentType: string,
    data: AsyncIterable<Uint8Array> | Uint8Array | string,
  ): Promise<Artifact> {
    if (this.#stop) return Promise.reject(this.#stop);
    return this.host.upload(this, name, contentType, data);
  }

  /** Stops the run early: aborts its signal and fails its pending info requests. First stop wins. */
  stop(kind: StopKind, reason: string): void {
    if (this.#stop) {
      // Losing the lease overrides anything: no result of this run may be sent any more.
      if (kind === "lease-lost") this.#stop = new RunStopped(kind, reason);
      return;
    }
    this.#stop = new RunStopped(kind, reason);
    for (const waiter of this.#infoWaiters.values()) waiter.reject(this.#stop);
    this.#infoWaiters.clear();
    this.#abort.abort(this.#stop);
  }
}
