import type { NatsConnection } from "@nats-io/transport-node";
import { type ConsumedMessage, DurableConsumer } from "../../../mesh/nats/consumer.js";
import type { Core } from "../core.js";
import { decode } from "./decode.js";
import { onRunCompleted, onRunCompletedBatch, onRunStarted, onRunStartedBatch } from "./run-events.js";
import { handleScheduleCommand } from "./schedule-command.js";
import {
  onApprovalGranted,
  onApprovalGrantedBatch,
  onWorkItemStateChanged,
  onWorkItemStateChangedBatch,
} from "./work-item-events.js";

type Handler = (m: ConsumedMessage) => Promise<void>;
type BatchHandler = (ms: ConsumedMessage[]) => Promise<void>;

/**
 * The scheduler's durable consumers, one filter subject each (cheapest on NATS 2.9).
 *
 * Event consumers run in batch mode: what arrived together is handled in one transaction and
 * acked with one write (at ~1,000 runs/s, one transaction and one ack per RunStarted and per
 * RunCompleted was most of the scheduler's CPU). A batch that throws is retried one message
 * at a time by the per-message handler, so retries, backoff and dead letters stay per message.
 * Commands (ScheduleWorkItem) call other services and keep per-message handling.
 */
export function createConsumers(
  core: Core,
  nc: NatsConnection,
  concurrency: number,
): { name: string; consumer: DurableConsumer }[] {
  const s = core.subjects;
  const make = (
    durable: string,
    stream: string,
    subject: string,
    handler: Handler,
    batch?: BatchHandler,
  ) => ({
    name: durable,
    consumer: new DurableConsumer({
      nc,
      stream,
      durable,
      filterSubjects: [subject],
      dlqSubject: s.dlq(durable),
      handler,
      // A few ms of gathering per hop of a DAG, for far fewer transactions when events trickle in.
      ...(batch ? { batchHandler: batch, batchLingerMs: 5 } : {}),
      concurrency,
      retryBackoff: { initialMs: 200, maxMs: 10_000 },
      onError: (err, m) =>
        core.logger.warn({ err, subject: m?.subject, consumer: durable }, "event handling failed"),
    }),
  });
  return [
    make(
      "scheduler-run-completed",
      s.streams.events,
      s.event("run", "RunCompleted"),
      (m) => onRunCompleted(core, m),
      (ms) => onRunCompletedBatch(core, ms),
    ),
    make(
      "scheduler-run-started",
      s.streams.events,
      s.event("run", "RunStarted"),
      (m) => onRunStarted(core, m),
      (ms) => onRunStartedBatch(core, ms),
    ),
    make(
      "scheduler-work-item-state",
      s.streams.events,
      s.event("work_item", "WorkItemStateChanged"),
      (m) => onWorkItemStateChanged(core, m),
      (ms) => onWorkItemStateChangedBatch(core, ms),
    ),
    make(
      "scheduler-approval-granted",
      s.streams.events,
      s.event("approval_request", "ApprovalGranted"),
      (m) => onApprovalGranted(core, m),
      (ms) => onApprovalGrantedBatch(core, ms),
    ),
    make("scheduler-schedule-command", s.streams.commands, s.command("scheduler", "ScheduleWorkItem"), (m) =>
      handleScheduleCommand(core, decode, m),
    ),
  ];
}
