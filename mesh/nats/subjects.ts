/**
 * One subject token: letters, digits, `_` and `-`. This excludes the separator `.`, the
 * wildcards `*` and `>`, whitespace and everything else that NATS would misread or that would
 * break stream and consumer names (which may not contain `.`, `*`, `>`, `/`, `\` or spaces).
 */
const TOKEN = /^[A-Za-z0-9_-]+$/;

function token(kind: string, value: string): string {
  if (!TOKEN.test(value)) {
    throw new Error(
      `invalid ${kind} ${JSON.stringify(value)} for a NATS subject: use letters, digits, "_" or "-" ` +
        "(no dots, spaces or wildcards)",
    );
  }
  return value;
}

/** JetStream stream names for one prefix. */
export interface StreamNames {
  events: string;
  commands: string;
  system: string;
  dlq: string;
}

/** The subject scheme of `proto/codex/events/v1/envelope.proto` for one prefix. */
export interface Subjects {
  readonly prefix: string;
  /** `<prefix>.events.<aggregateType>.<eventName>`: a domain event. */
  event(aggregateType: string, eventName: string): string;
  /** `<prefix>.commands.<service>.<name>`: a command addressed to one service. */
  command(service: string, name: string): string;
  /** `<prefix>.system.<name>`: an operational event about the platform itself. */
  system(name: string): string;
  /** `<prefix>.dlq.<consumer>`: where a consumer parks messages it gave up on. */
  dlq(consumer: string): string;
  /** `<PREFIX>_EVENTS`, `<PREFIX>_COMMANDS`, `<PREFIX>_SYSTEM`, `<PREFIX>_DLQ`. */
  readonly streams: StreamNames;
  /** The subject filter each stream captures, e.g. `<prefix>.events.>`. */
  readonly filters: StreamNames;
}

/**
 * Builds the subject and stream names for a prefix (`codex` in production, unique per test run).
 *
 * Why one builder: publishers, consumers, stream provisioning and the DLQ must agree on every
 * name, and a typo'd or space-containing token silently routes messages nowhere. Every token is
 * validated when the subject is built, so a bad name fails loudly at the call site.
 */
export function subjectsFor(prefix: string): Subjects {
  const p = token("prefix", prefix);
  const upper = p.toUpperCase();
  return {
    prefix: p,
    event: (aggregateType, eventName) =>
      `${p}.events.${token("aggregate type", aggregateType)}.${token("event name", eventName)}`,
    command: (service, name) => `${p}.commands.${token("service", service)}.${token("command name", name)}`,
    system: (name) => `${p}.system.${token("system event name", name)}`,
    dlq: (consumer) => `${p}.dlq.${token("consumer", consumer)}`,
    streams: {
      events: `${upper}_EVENTS`,
      commands: `${upper}_COMMANDS`,
      system: `${upper}_SYSTEM`,
      dlq: `${upper}_DLQ`,
    },
    filters: {
      events: `${p}.events.>`,
      commands: `${p}.commands.>`,
      system: `${p}.system.>`,
      dlq: `${p}.dlq.>`,
    },
  };
}

/**
 * Whether `subject` matches the NATS filter `filter` (`*` = one token, trailing `>` = one or
 * more tokens). Used where the server cannot filter for us, e.g. several filter subjects on a
 * NATS 2.9 consumer.
 */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split(".");
  const s = subject.split(".");
  for (let i = 0; i < f.length; i++) {
    const ft = f[i];
    if (ft === ">") return i === f.length - 1 && s.length > i;
    const st = s[i];
    if (st === undefined) return false;
    if (ft !== "*" && ft !== st) return false;
  }
  return f.length === s.length;
}
