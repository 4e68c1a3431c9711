/**
 * Project memberships, asked of the project service and cached briefly.
 *
 * The project contract allows caching GetMemberRole answers for at most 30 seconds; the cache
 * here defaults to 10. Calls are made as the gateway's service principal (GetMemberRole is
 * internal, and ListMembers "-" for another principal needs a platform admin), never as the
 * caller, even when made while serving the caller's request. Concurrent misses for the same
 * key share one call, so a burst of requests from one user costs one lookup.
 */
import { randomUUID } from "node:crypto";
import { ProjectState } from "../../../gen/codex/project/v1/project_pb.js";
import type { ProjectService } from "../../../gen/codex/project/v1/project_service_pb.js";
import {
  createRequestContext,
  currentContext,
  type Principal,
  runWithContext,
} from "../../../mesh/context.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import type { ServiceClient } from "../../../mesh/grpc/types.js";
import { type RoleName, roleFromProto } from "./roles.js";

/** The principal the gateway calls other services as. */
export const GATEWAY_PRINCIPAL: Principal = { type: "service", id: "gateway" };

/** One principal's standing in one project. */
export interface Membership {
  role: RoleName | undefined;
  archived: boolean;
  projectName: string;
}

/** All memberships of one principal (project id → role). */
export interface Memberships {
  roles: Record<string, RoleName>;
  /** More memberships exist than were read. */
  truncated: boolean;
}

export interface MembershipSource {
  /** The principal's role in a project; `undefined` when the project does not exist. */
  roleIn(projectId: string, principalId: string): Promise<Membership | undefined>;
  /** Every project the principal is a member of (up to `maxMemberships`). */
  rolesOf(principalId: string): Promise<Memberships>;
  /** Drops cached answers about a principal (or everything), e.g. on MemberRemoved. */
  forget(principalId?: string): void;
}

export interface ProjectMembershipOptions {
  client: ServiceClient<typeof ProjectService>;
  ttlMs: number;
  /** Memberships read per principal (WhoAmI reports at most 1,000). */
  maxMemberships?: number;
  /** Entries kept at most; the oldest go first. */
  maxEntries?: number;
  now?: () => number;
}

/** Runs `fn` as the gateway's service principal, keeping the current request's ids. */
export function asGateway<T>(fn: () => Promise<T>): Promise<T> {
  const ctx = currentContext();
  const init = {
    principal: GATEWAY_PRINCIPAL,
    requestId: randomUUID(),
    correlationId: ctx?.correlationId ?? "",
  };
  const next = createRequestContext(ctx?.deadline !== undefined ? { ...init, deadline: ctx.deadline } : init);
  return runWithContext(next, fn);
}

/** A {@link MembershipSource} backed by ProjectService. */
export function projectMemberships(opts: ProjectMembershipOptions): MembershipSource {
  const now = opts.now ?? Date.now;
  const max = opts.maxMemberships ?? 1_000;
  const cache = new TtlCache<unknown>(opts.ttlMs, opts.maxEntries ?? 20_000, now);

  const roleIn = (projectId: string, principalId: string) =>
    cache.get(`r\u0000${principalId}\u0000${projectId}`, async (): Promise<Membership | undefined> => {
      try {
        const res = await asGateway(() => opts.client.getMemberRole({ projectId, principalId }));
        return {
          role: roleFromProto(res.role),
          archived: res.projectState === ProjectState.ARCHIVED,
          projectName: res.projectName,
        };
      } catch (err) {
        if (err instanceof ServiceError && err.code === Code.NOT_FOUND) return undefined;
        throw err;
      }
    }) as Promise<Membership | undefined>;

  const rolesOf = (principalId: string) =>
    cache.get(`m\u0000${principalId}`, async (): Promise<Memberships> => {
      const roles: Record<string, RoleName> = {};
      let pageToken = "";
      let count = 0;
      do {
        const res = await asGateway(() =>
          opts.client.listMembers({ projectId: "-", principalId, pageSize: 500, pageToken }),
        );
        for (const m of res.members) {
          const role = roleFromProto(m.role);
          if (role !== undefined && count < max) {
            roles[m.projectId] = role;
            count++;
          }
        }
        pageToken = res.nextPageToken;
      } while (pageToken !== "" && count < max);
      return { roles, truncated: pageToken !== "" };
    }) as Promise<Memberships>;

  return {
    roleIn,
    rolesOf,
    forget: (principalId) => cache.forget(principalId === undefined ? undefined : `\u0000${principalId}`),
  };
}

/**
 * A small TTL cache with single-flight loading. Failures are not cached (the next call
 * retries). Insertion order doubles as age order, so eviction drops the oldest entry.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: Promise<V>; expires: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && hit.expires > this.now()) return hit.value;
    if (hit) this.entries.delete(key);
    const value = load();
    this.entries.set(key, { value, expires: this.now() + this.ttlMs });
    value.catch(() => {
      if (this.entries.get(key)?.value === value) this.entries.delete(key);
    });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return value;
  }

  /** Drops every entry whose key contains `fragment` (all entries when undefined). */
  forget(fragment?: string): void {
    if (fragment === undefined) {
      this.entries.clear();
      return;
    }
    for (const key of this.entries.keys())
      if (`${key}\u0000`.includes(`${fragment}\u0000`)) this.entries.delete(key);
  }
}
