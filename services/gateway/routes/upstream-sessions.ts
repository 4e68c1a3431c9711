import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  constants,
  type OutgoingHttpHeaders,
} from "node:http2";
import { unavailable } from "../../../mesh/errors.js";
import type { UpstreamName } from "./route-table.js";

/** The addresses of an upstream's replicas (host:port), or undefined when it is not configured. */
export type AddressResolver = (name: UpstreamName) => readonly string[] | undefined;

/** Options of the HTTP/2 upstream pool. */
export interface SessionPoolOptions {
  /** Ping a busy session this often; no ack within `keepaliveTimeoutMs` closes it (default 30 s / 20 s). */
  readonly keepaliveMs?: number;
  readonly keepaliveTimeoutMs?: number;
}

/** The first delay before a failed replica is dialled again; doubled per failure up to the cap. */
const RETRY_BASE_MS = 1_000;
const RETRY_CAP_MS = 30_000;

/**
 * One replica's connection: a single HTTP/2 session, dialled when first needed and dialled again
 * after it closes (GOAWAY, socket error, idle end). `failing` is set when a dial fails and
 * cleared when one succeeds; the pool skips failing replicas while any other is not.
 */
class Replica {
  private session: ClientHttp2Session | undefined;
  failing = false;
  private failures = 0;
  private retryAt = 0;
  private active = 0;
  private keepalive: NodeJS.Timeout | undefined;

  constructor(
    readonly address: string,
    private readonly opts: Required<SessionPoolOptions>,
  ) {}

  /** Whether a failing replica is due for another dial attempt. */
  dueForRetry(now: number): boolean {
    return this.failing && this.session === undefined && now >= this.retryAt;
  }

  /** Dials in the background (no call rides on it): a failing replica proves itself first. */
  probe(): void {
    this.open();
  }

  request(headers: OutgoingHttpHeaders): ClientHttp2Stream {
    const session = this.open();
    const stream = session.request(headers, { endStream: false });
    this.active++;
    stream.once("close", () => this.active--);
    return stream;
  }

  close(): void {
    clearInterval(this.keepalive);
    this.session?.close();
    this.session = undefined;
  }

  private open(): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = connect(`http://${this.address}`, {
      // MB. Node's default (10) makes nghttp2 refuse streams with ENHANCE_YOUR_CALM under a burst;
      // flow control and GRPC_MAX_MESSAGE_BYTES bound the memory instead (grpc-js lifts it too).
      maxSessionMemory: 1_000,
      settings: { enablePush: false, initialWindowSize: 1 << 20 },
    });
    this.session = session;
    let connected = false;
    session.once("connect", () => {
      connected = true;
      this.failing = false;
      this.failures = 0;
      session.setLocalWindowSize(4 << 20);
    });
    // Errors reach the streams of the session as well; here only the replica's state changes.
    session.on("error", () => {
      if (!connected) this.markFailing();
    });
    // A GOAWAY lets streams in flight finish; new calls go to a new session at once.
    session.once("goaway", () => this.forget(session));
    session.once("close", () => {
      if (!connected) this.markFailing();
      this.forget(session);
    });
    this.keepalive = setInterval(() => this.ping(session), this.opts.keepaliveMs);
    this.keepalive.unref();
    return session;
  }

  /** Pings only while calls are in flight, as grpc-js does without `keepalive_permit_without_calls`. */
  private ping(session: ClientHttp2Session): void {
    if (this.active === 0 || session.destroyed) return;
    const timer = setTimeout(() => session.destroy(), this.opts.keepaliveTimeoutMs);
    timer.unref();
    try {
      session.ping(() => clearTimeout(timer));
    } catch {
      clearTimeout(timer); // the session is closing: its own events take over
    }
  }

  private forget(session: ClientHttp2Session): void {
    if (this.session !== session) return;
    clearInterval(this.keepalive);
    this.session = undefined;
  }

  private markFailing(): void {
    this.failing = true;
    this.failures++;
    this.retryAt = Date.now() + Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (this.failures - 1));
  }
}

/**
 * HTTP/2 sessions to every upstream replica, picked round-robin per call: what the gRPC front
 * door forwards frames over.
 *
 * Why sessions of our own rather than grpc-js channels: forwarding bytes over `node:http2`
 * skips grpc-js's per-call machinery (call stacks, metadata objects, message framing), which was
 * most of the gateway's CPU per call. The rotation's rules: addresses may be
 * host names, the order is deterministic, and a replica whose last dial failed is skipped while
 * another is not (and dialled again in the background, with backoff, until it answers).
 */
export class UpstreamSessions {
  private readonly upstreams = new Map<string, { replicas: Replica[]; next: number }>();
  private readonly opts: Required<SessionPoolOptions>;

  constructor(
    private readonly resolve: AddressResolver,
    opts: SessionPoolOptions = {},
  ) {
    this.opts = {
      keepaliveMs: opts.keepaliveMs ?? 30_000,
      keepaliveTimeoutMs: opts.keepaliveTimeoutMs ?? 20_000,
    };
  }

  /**
   * Opens a stream to the next replica of `name` with the given request headers (`:path` and
   * the rest; `:authority` is the replica's address). Throws UNAVAILABLE when it has no address.
   */
  request(name: Parameters<AddressResolver>[0], headers: OutgoingHttpHeaders): ClientHttp2Stream {
    const replica = this.pick(name);
    headers[constants.HTTP2_HEADER_AUTHORITY] = replica.address;
    return replica.request(headers);
  }

  /** Closes every session (GOAWAY; streams in flight may finish). */
  close(): void {
    for (const u of this.upstreams.values()) for (const r of u.replicas) r.close();
    this.upstreams.clear();
  }

  private pick(name: Parameters<AddressResolver>[0]): Replica {
    const u = this.replicasOf(name);
    const n = u.replicas.length;
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      const r = u.replicas[u.next++ % n]!;
      if (!r.failing) return r;
      if (r.dueForRetry(now)) r.probe();
    }
    return u.replicas[u.next++ % n]!;
  }

  private replicasOf(name: Parameters<AddressResolver>[0]) {
    const known = this.upstreams.get(name);
    if (known) return known;
    const addresses = this.resolve(name);
    if (!addresses || addresses.length === 0) {
      throw unavailable(`upstream "${name}" is not configured on this gateway`);
    }
    const u = { replicas: addresses.map((a) => new Replica(a, this.opts)), next: 0 };
    this.upstreams.set(name, u);
    return u;
  }
}
