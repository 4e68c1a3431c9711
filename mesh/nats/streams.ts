import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { type StreamNames, subjectsFor } from "./subjects.js";

/** Tunables for {@link ensureStreams}; the defaults suit production. */
export interface EnsureStreamsOptions {
  /** How long events, commands and system events are kept (default 7 days). */
  maxAgeMs?: number;
  /** How long dead letters are kept (default 30 days: long enough for a human to look). */
  dlqMaxAgeMs?: number;
  /** Replicas per stream (default 1; 3 on a clustered production server). */
  replicas?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

type NamedStreamConfig = Partial<StreamConfig> & { name: string };

/**
 * The window in which JetStream drops a repeated `Nats-Msg-Id`. It must exceed the longest gap
 * between an outbox relay publishing a row and a successor re-publishing it after a crash.
 */
export const DUPLICATE_WINDOW_MS = 2 * 60 * 1000;

/** "stream name already in use with a different configuration" */
const STREAM_NAME_IN_USE = 10058;

function configs(prefix: string, opts: EnsureStreamsOptions): Record<keyof StreamNames, NamedStreamConfig> {
  const s = subjectsFor(prefix);
  const base = (name: string, subject: string, maxAgeMs: number): NamedStreamConfig => ({
    name,
    subjects: [subject],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(maxAgeMs),
    duplicate_window: nanos(Math.min(DUPLICATE_WINDOW_MS, maxAgeMs)),
    num_replicas: opts.replicas ?? 1,
  });
  const maxAge = opts.maxAgeMs ?? 7 * DAY_MS;
  return {
    events: base(s.streams.events, s.filters.events, maxAge),
    commands: base(s.streams.commands, s.filters.commands, maxAge),
    system: base(s.streams.system, s.filters.system, maxAge),
    dlq: base(s.streams.dlq, s.filters.dlq, opts.dlqMaxAgeMs ?? 30 * DAY_MS),
  };
}

async function ensureOne(jsm: JetStreamManager, config: NamedStreamConfig): Promise<StreamInfo> {
  try {
    // Creating with an identical config is a no-op on the server, so racing replicas all succeed.
    return await jsm.streams.add(config);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === STREAM_NAME_IN_USE)) throw err;
    // The stream exists with other settings (e.g. a changed max age): converge to ours.
    const { name, storage: _storage, ...mutable } = config;
    return await jsm.streams.update(name, mutable);
  }
}

/**
 * Creates or updates the four streams of a prefix (`<PREFIX>_EVENTS`, `_COMMANDS`, `_SYSTEM`,
 * `_DLQ`) and returns their info.
 *
 * Why every service calls it at start-up: no deploy step has to run first, and a stream deleted
 * by mistake comes back on the next restart. It is idempotent and safe concurrently: an
 * identical create is a server-side no-op, and a create that finds different settings becomes an
 * update (last writer wins, so keep the options identical across services). File storage and
 * limits retention keep events replayable for new consumers; the 2-minute duplicate window is
 * what turns outbox re-publication after a crash into exactly-once storage.
 */
export async function ensureStreams(
  jsm: JetStreamManager,
  prefix: string,
  opts: EnsureStreamsOptions = {},
): Promise<Record<keyof StreamNames, StreamInfo>> {
  const c = configs(prefix, opts);
  const [events, commands, system, dlq] = await Promise.all([
    ensureOne(jsm, c.events),
    ensureOne(jsm, c.commands),
    ensureOne(jsm, c.system),
    ensureOne(jsm, c.dlq),
  ]);
  return { events, commands, system, dlq };
}

/**
 * Deletes the four streams of a prefix, ignoring ones that do not exist. For tests, which each
 * provision a unique prefix and must leave the shared server clean.
 */
export async function deleteStreams(jsm: JetStreamManager, prefix: string): Promise<void> {
  const names = Object.values(subjectsFor(prefix).streams);
  await Promise.all(
    names.map((name) =>
      jsm.streams.delete(name).catch((err: unknown) => {
        if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
        return false;
      }),
    ),
  );
}
