import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";

/**
 * Test support: every message currently stored in a stream, in sequence order.
 *
 * Why it exists: exactly-once claims (outbox relay, publish dedupe, dead-lettering) can only be
 * checked by looking at what the server actually stored, not at what the client believes it sent.
 * Reads one message per request, so keep it to test-sized streams.
 */
export async function readStream(jsm: JetStreamManager, stream: string): Promise<StoredMsg[]> {
  const { state } = await jsm.streams.info(stream);
  const out: StoredMsg[] = [];
  if (state.messages === 0) return out;
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (m !== null) out.push(m);
  }
  return out;
}

/**
 * Test support: polls `check` until it returns true, failing with `what` after `timeoutMs`.
 * Integration tests wait on real servers, where a fixed sleep is either flaky or slow.
 */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
