/**
 * Heartbeats on their own timer. The work loop never sends beats: a handler that is busy (many
 * awaits, child processes, long I/O) does not delay them, because the interval fires on the
 * event loop independently and only offers the latest beat to the outbound slot (which keeps
 * one beat, never a queue). A handler that blocks the event loop synchronously for longer than
 * the lease would still starve it: CPU-bound work belongs in a worker thread or child process.
 */
import { cpus, freemem, loadavg, totalmem } from "node:os";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { AgentMetricsSchema } from "../gen/codex/agentmanager/v1/agent_pb.js";
import type { RunLeaseSchema } from "../gen/codex/agentmanager/v1/run_pb.js";

export type RunLeaseInit = MessageInitShape<typeof RunLeaseSchema>;
export type MetricsInit = MessageInitShape<typeof AgentMetricsSchema>;

export interface HeartbeatSink {
  offerHeartbeat(beat: { runs: RunLeaseInit[]; metrics: MetricsInit }): void;
}

/** Fires every `intervalMs` and offers a beat listing the leases `leases()` returns. */
export class HeartbeatTimer {
  #timer: NodeJS.Timeout | undefined;
  #intervalMs: number;
  readonly #metrics = new MetricsSampler();

  constructor(
    private readonly sink: HeartbeatSink,
    private readonly leases: () => RunLeaseInit[],
    intervalMs: number,
  ) {
    this.#intervalMs = intervalMs;
  }

  get intervalMs(): number {
    return this.#intervalMs;
  }

  /** Starts (or restarts with a new interval, as a Welcome may set); beats once right away. */
  start(intervalMs = this.#intervalMs): void {
    this.stop();
    this.#intervalMs = intervalMs;
    this.beat();
    this.#timer = setInterval(() => this.beat(), intervalMs);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Offers one beat now. */
  beat(): void {
    this.sink.offerHeartbeat({ runs: this.leases(), metrics: this.#metrics.sample() });
  }
}

/** Host-wide CPU use between two samples, memory and load; cheap enough for every beat. */
export class MetricsSampler {
  #last = cpuTimes();

  sample(): MetricsInit {
    const now = cpuTimes();
    const busy = now.busy - this.#last.busy;
    const total = now.total - this.#last.total;
    this.#last = now;
    return {
      cpuPercent: total > 0 ? Math.round((1000 * busy) / total) / 10 : 0,
      memoryUsedBytes: BigInt(totalmem() - freemem()),
      memoryTotalBytes: BigInt(totalmem()),
      loadAverage1m: loadavg()[0] ?? 0,
      sampleTime: timestampNow(),
    };
  }
}

function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const cpu of cpus()) {
    const t = cpu.times;
    const sum = t.user + t.nice + t.sys + t.idle + t.irq;
    total += sum;
    busy += sum - t.idle;
  }
  return { busy, total };
}
