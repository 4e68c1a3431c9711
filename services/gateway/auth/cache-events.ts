/**
 * Drops cached authorization data when the facts behind it change, instead of waiting for the
 * TTL: the project contract says callers "must drop it on MemberAdded, MemberRemoved,
 * MemberRoleChanged or ProjectArchived", and a revoked key should stop working on every replica
 * at once, not only on the one that revoked it.
 *
 * Every replica must see every event, so this is a plain NATS subscription (JetStream delivers
 * published messages to core subscribers too), not a durable consumer whose replicas would
 * share — and so split — the messages. At-most-once is enough: a missed message only means the
 * entry lives until its TTL (≤ 30 s memberships, ≤ 5 s keys).
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { ApiKeyRevokedSchema } from "../../../gen/codex/events/v1/gateway_events_pb.js";
import {
  MemberAddedSchema,
  MemberRemovedSchema,
  MemberRoleChangedSchema,
  ProjectArchivedSchema,
} from "../../../gen/codex/events/v1/project_events_pb.js";
import { decodeEnvelope, unpackPayload } from "../../../mesh/events/envelope.js";
import type { Component } from "../../../mesh/lifecycle.js";
import type { Logger } from "../../../mesh/logging.js";

export interface CacheEventTargets {
  /** Drops what is cached about a principal (all principals when undefined). */
  forgetPrincipal(principalId?: string): void;
  /** Drops a key from the API-key cache by its lookup (the part after `cdx_`). */
  forgetKey(lookup: string): void;
}

const EVENTS = ["MemberAdded", "MemberRemoved", "MemberRoleChanged", "ProjectArchived", "ApiKeyRevoked"];

/** Applies one event envelope to the caches; returns what it did (for tests and logs). */
export function applyCacheEvent(bytes: Uint8Array, targets: CacheEventTargets): string | undefined {
  const env = decodeEnvelope(bytes);
  for (const schema of [MemberAddedSchema, MemberRemovedSchema, MemberRoleChangedSchema]) {
    const member = unpackPayload(env, schema);
    if (member) {
      targets.forgetPrincipal(member.principalId);
      return `principal ${member.principalId}`;
    }
  }
  if (unpackPayload(env, ProjectArchivedSchema)) {
    targets.forgetPrincipal();
    return "all principals";
  }
  const revoked = unpackPayload(env, ApiKeyRevokedSchema);
  if (revoked?.keyPrefix.startsWith("cdx_")) {
    targets.forgetKey(revoked.keyPrefix.slice(4));
    return `key ${revoked.keyPrefix}`;
  }
  return undefined;
}

/** A lifecycle component subscribing to the events above under `prefix`. */
export function cacheEventWatcher(
  nc: NatsConnection,
  prefix: string,
  targets: CacheEventTargets,
  logger?: Pick<Logger, "warn">,
): Component {
  let subs: Subscription[] = [];
  return {
    start: async () => {
      subs = EVENTS.map((name) =>
        nc.subscribe(`${prefix}.events.*.${name}`, {
          callback: (err, msg) => {
            if (err) return logger?.warn({ err }, "cache invalidation subscription failed");
            try {
              applyCacheEvent(msg.data, targets);
            } catch (e) {
              logger?.warn({ err: e, subject: msg.subject }, "undecodable event ignored by the auth caches");
            }
          },
        }),
      );
    },
    stop: async () => {
      for (const s of subs) s.unsubscribe();
      subs = [];
    },
  };
}
