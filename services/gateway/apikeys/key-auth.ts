/**
 * Authenticates API key secrets and builds the API_KEY principal.
 *
 * Revocation and expiry bite within `cacheTtlMs` (≤ 5 s, the contract's promise) on every
 * replica, and at once on the replica that revoked (it calls `forget`). The key's effective
 * role is its own capped by its creator's current role in the project (memberships cached
 * ≤ 30 s); a creator who left leaves the key authenticated but without any role, so every
 * project call is refused with PERMISSION_DENIED while WhoAmI still explains why.
 */
import { unauthenticated } from "../../../mesh/errors.js";
import type { ApiKeyAuthenticator } from "../auth/authenticator.js";
import { type MembershipSource, TtlCache } from "../auth/memberships.js";
import type { GatewayPrincipal } from "../auth/principal.js";
import { capRole } from "../auth/roles.js";
import { lookupOf, secretMatches } from "./secret.js";
import { type ApiKeyRow, type Db, findByLookup, touchLastUse } from "./store.js";

export interface KeyAuthDeps {
  db: Db;
  memberships: Pick<MembershipSource, "roleIn">;
  cacheTtlMs: number;
  now?: () => Date;
  /** Reports failures of the best-effort last-use update. */
  onTouchError?: (err: unknown) => void;
}

export class ApiKeyAuth implements ApiKeyAuthenticator {
  private readonly rows: TtlCache<ApiKeyRow | undefined>;
  /** Requests per minute of recently seen keys, by rate-limit client key. */
  private readonly rpm = new Map<string, number>();
  private readonly touched = new Map<string, number>();

  constructor(private readonly deps: KeyAuthDeps) {
    this.rows = new TtlCache(deps.cacheTtlMs, 10_000);
  }

  async authenticate(secret: string): Promise<GatewayPrincipal> {
    const lookup = lookupOf(secret);
    if (lookup === undefined) throw unauthenticated("malformed API key");
    const row = await this.rows.get(lookup, () => findByLookup(this.deps.db, lookup));
    // Same answer for an unknown key and a wrong secret: nothing to learn by probing.
    if (!row || !secretMatches(secret, row.secretSha256)) throw unauthenticated("unknown API key");
    const now = this.now();
    if (row.revokeTime !== null) throw unauthenticated("API key revoked");
    if (row.expireTime.getTime() <= now.getTime()) throw unauthenticated("API key expired");
    const creator = await this.deps.memberships.roleIn(row.projectId, row.createdBy);
    const effective = capRole(row.role, creator?.role);
    this.remember(row);
    this.touch(row.id, now);
    return {
      type: "api_key",
      id: row.id,
      displayName: row.displayName,
      authMethod: "api_key",
      expiresAt: row.expireTime.getTime(),
      projectRoles: effective === undefined ? {} : { [row.projectId]: effective },
      apiKey: {
        projectId: row.projectId,
        role: row.role,
        scopes: row.scopes,
        requestsPerMinute: row.requestsPerMinute,
      },
    };
  }

  /** Drops a key from this replica's cache (after revoking it here). */
  forget(lookup: string): void {
    this.rows.forget(lookup);
  }

  /** The per-key limit for the rate limiter's client key `api_key:<id>`, if the key set one. */
  perMinuteOf(clientKey: string): number | undefined {
    return this.rpm.get(clientKey);
  }

  private remember(row: ApiKeyRow): void {
    const k = `api_key:${row.id}`;
    if (row.requestsPerMinute > 0) {
      this.rpm.delete(k);
      this.rpm.set(k, row.requestsPerMinute);
      if (this.rpm.size > 10_000) this.rpm.delete(this.rpm.keys().next().value as string);
    } else {
      this.rpm.delete(k);
    }
  }

  /** Best effort, at most once a minute per key and replica, never delaying the call. */
  private touch(id: string, now: Date): void {
    const last = this.touched.get(id) ?? 0;
    if (now.getTime() - last < 60_000) return;
    this.touched.set(id, now.getTime());
    if (this.touched.size > 10_000) this.touched.delete(this.touched.keys().next().value as string);
    touchLastUse(this.deps.db, id, now).catch((err: unknown) => this.deps.onTouchError?.(err));
  }

  private now(): Date {
    return this.deps.now ? this.deps.now() : new Date();
  }
}
