import { Client, connectivityState, credentials } from "@grpc/grpc-js";
import { unavailable } from "../../../mesh/errors.js";
import type { UpstreamName } from "./route-table.js";

/** Messages cross the gateway as the bytes the client sent: no decode, no re-encode. */
export const passThrough = (buf: Buffer): Buffer => buf;

/** Where an upstream's replicas are; undefined when it is not configured. */
export type AddressResolver = (name: UpstreamName) => readonly string[] | undefined;

interface Replicas {
  readonly clients: Client[];
  next: number;
}

/**
 * One HTTP/2 channel per upstream replica, picked round-robin per call.
 *
 * Why our own rotation rather than grpc-js `round_robin` over an `ipv4:` target: replicas may be
 * host names (one Kubernetes Service each, or several in a canary), and the rotation stays
 * deterministic and observable. A replica whose channel is in TRANSIENT_FAILURE is skipped while
 * another one is not, so one dead replica does not fail every N-th call.
 * Channels are opened lazily: an upstream that is never called is never dialled.
 */
export class UpstreamPool {
  private readonly replicas = new Map<UpstreamName, Replicas>();

  constructor(
    private readonly resolve: AddressResolver,
    private readonly opts: { maxMessageBytes: number },
  ) {}

  /** A channel for the next call to `name`; throws UNAVAILABLE when it has no address. */
  pick(name: UpstreamName): Client {
    const r = this.replicasOf(name);
    const n = r.clients.length;
    for (let i = 0; i < n; i++) {
      const client = r.clients[r.next++ % n]!;
      const state = client.getChannel().getConnectivityState(false);
      if (state !== connectivityState.TRANSIENT_FAILURE) return client;
    }
    return r.clients[r.next++ % n]!;
  }

  /** Closes every channel; in-flight calls are cancelled. */
  close(): void {
    for (const r of this.replicas.values()) for (const c of r.clients) c.close();
    this.replicas.clear();
  }

  private replicasOf(name: UpstreamName): Replicas {
    const known = this.replicas.get(name);
    if (known) return known;
    const addresses = this.resolve(name);
    if (!addresses || addresses.length === 0) {
      throw unavailable(`upstream "${name}" is not configured on this gateway`);
    }
    const clients = addresses.map(
      (a) =>
        new Client(a, credentials.createInsecure(), {
          "grpc.max_receive_message_length": this.opts.maxMessageBytes,
          "grpc.max_send_message_length": this.opts.maxMessageBytes,
          "grpc.keepalive_time_ms": 30_000,
          // Each replica gets its own channel even when two addresses resolve alike.
          "grpc.use_local_subchannel_pool": 1,
          // No channelz service is served: its per-call tracking is pure cost here.
          "grpc.enable_channelz": 0,
        }),
    );
    const r = { clients, next: 0 };
    this.replicas.set(name, r);
    return r;
  }
}
