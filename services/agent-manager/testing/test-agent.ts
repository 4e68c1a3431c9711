/**
 * A scripted agent for integration tests, speaking the real Connect protocol over gRPC: it
 * registers, opens the stream with a hello, heartbeats on its own timer (listing the runs it
 * holds, like the SDK will), records every manager message, and lets a test send anything.
 * Not imported by production code.
 */
import { randomBytes } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AgentSchema } from "../../../gen/codex/agentmanager/v1/agent_pb.js";
import type { ConnectRequestSchema, ConnectResponse } from "../../../gen/codex/agentmanager/v1/connect_pb.js";
import type { RunAssignment } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { RunState } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { ServiceError } from "../../../mesh/errors.js";
import { OutboundQueue } from "../connect/outbound-queue.js";
import type { AmClient, AmHarness } from "./harness.js";

type Message = NonNullable<MessageInitShape<typeof ConnectRequestSchema>["message"]>;
type Held = { runId: string; token: bigint };

export class TestAgent {
  readonly received: ConnectResponse[] = [];
  /** Runs this agent believes it holds (assigned, not completed or rejected). */
  readonly held = new Map<string, bigint>();
  id = "";
  token = "";
  client!: AmClient;
  error: ServiceError | undefined;
  closed = false;
  heartbeats = 0;
  #input = new OutboundQueue<MessageInitShape<typeof ConnectRequestSchema>>();
  #seq = 0n;
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void)[] = [];
  #done: Promise<void> = Promise.resolve();

  private constructor() {}

  /** Registers an agent (unique name unless given) and returns it, not yet connected. */
  static async register(h: AmHarness, agent: MessageInitShape<typeof AgentSchema> = {}): Promise<TestAgent> {
    const a = new TestAgent();
    const registrar = h.client({ type: "service", id: "agent-bootstrap" });
    const res = await registrar.registerAgent({
      agent: { name: `agent-${randomBytes(4).toString("hex")}`, capacity: 1, ...agent },
    });
    a.id = res.agent?.id ?? "";
    a.token = res.sessionToken;
    a.client = h.client({ type: "agent", id: a.id });
    return a;
  }

  /** Opens the stream and waits for the welcome. */
  async connect(
    opts: { heartbeatMs?: number; renew?: boolean; resume?: Held[]; token?: string } = {},
  ): Promise<ConnectResponse> {
    this.#input = new OutboundQueue();
    this.#seq = 0n;
    const from = this.received.length;
    this.closed = false;
    this.error = undefined;
    const stream = this.client.connect(this.#input);
    this.#done = (async () => {
      try {
        for await (const m of stream) {
          this.#observe(m);
          this.received.push(m);
          this.#notify();
        }
      } catch (err) {
        this.error = ServiceError.from(err);
      } finally {
        this.closed = true;
        clearInterval(this.#timer);
        this.#notify();
      }
    })();
    this.send({
      case: "hello",
      value: {
        agentId: this.id,
        sessionToken: opts.token ?? this.token,
        resumeRuns: (opts.resume ?? []).map((r) => ({ runId: r.runId, fencingToken: r.token })),
        agentVersion: "test",
      },
    });
    const welcome = await this.waitFor((m) => m.message.case === "welcome", 5_000, from);
    if (opts.heartbeatMs !== 0) this.startHeartbeats(opts.heartbeatMs ?? 60, opts.renew ?? true);
    return welcome;
  }

  send(message: Message): bigint {
    this.#seq += 1n;
    this.#input.push({ messageSeq: this.#seq, message });
    return this.#seq;
  }

  heartbeat(runs: Held[] = [...this.held].map(([runId, token]) => ({ runId, token }))): bigint {
    this.heartbeats += 1;
    return this.send({
      case: "heartbeat",
      value: {
        seq: BigInt(this.heartbeats),
        runs: runs.map((r) => ({ runId: r.runId, fencingToken: r.token })),
      },
    });
  }

  /** Heartbeats every `everyMs`; with `renew` false they keep the agent live but renew no lease. */
  startHeartbeats(everyMs: number, renew = true): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => this.heartbeat(renew ? undefined : []), everyMs);
  }

  stopHeartbeats(): void {
    clearInterval(this.#timer);
  }

  start(runId: string, step = 0): bigint {
    return this.send({
      case: "runStatus",
      value: { runId, fencingToken: this.tokenOf(runId), state: RunState.RUNNING, currentStep: step },
    });
  }

  complete(runId: string, status = RunState.SUCCEEDED, token = this.tokenOf(runId), exitCode = 0): bigint {
    this.held.delete(runId);
    return this.send({ case: "complete", value: { runId, fencingToken: token, status, exitCode } });
  }

  log(runId: string, seq: number, text: string, stream = 1, step?: number): bigint {
    return this.send({
      case: "logs",
      value: {
        runId,
        fencingToken: this.tokenOf(runId),
        chunks: [
          {
            seq: BigInt(seq),
            stream,
            data: new TextEncoder().encode(text),
            ...(step !== undefined ? { stepIndex: step } : {}),
          },
        ],
      },
    });
  }

  tokenOf(runId: string): bigint {
    return this.held.get(runId) ?? 0n;
  }

  assignments(): RunAssignment[] {
    return this.received.flatMap((m) => (m.message.case === "assignment" ? [m.message.value] : []));
  }

  /** The first message (from index `from`) matching `pred`, waiting up to `timeoutMs`. */
  async waitFor(
    pred: (m: ConnectResponse) => boolean,
    timeoutMs = 5_000,
    from = 0,
  ): Promise<ConnectResponse> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.slice(from).find(pred);
      if (found) return found;
      if (this.closed) throw new Error(`stream closed (${this.error?.message ?? "ok"}) while waiting`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out waiting for a message; got ${this.received.map((m) => m.message.case).join(",")}`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits until the acked seq reaches `seq`. */
  async acked(seq: bigint, timeoutMs = 5_000): Promise<void> {
    await this.waitFor((m) => m.message.case === "ack" && m.message.value.ackedSeq >= seq, timeoutMs);
  }

  /** Ends the stream from the agent's side and waits for the manager to close it. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#input.end();
    await this.#done;
  }

  /** Waits for the stream to end (closed by the manager). */
  async ended(): Promise<void> {
    await this.#done;
  }

  #observe(m: ConnectResponse): void {
    if (m.message.case === "assignment") {
      const a = m.message.value;
      if (a.run) this.held.set(a.run.id, a.fencingToken);
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const w of wake) w();
  }
}
