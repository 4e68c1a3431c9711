/**
 * Live leases and agent liveness in Redis: what changes with every heartbeat, kept out of
 * Postgres (DESIGN.md: "do not write every agent heartbeat to Postgres").
 *
 * Keys (under the configured prefix):
 *   leases   ZSET  run id -> lease expiry (epoch ms)
 *   lease    HASH  run id -> "<fencing token>|<agent id>|<cancel 0/1>"
 *   epoch    STRING present while the lease store is complete
 *   hb       ZSET  agent id -> last heartbeat (epoch ms), agents not yet found OFFLINE
 *   lasthb   HASH  agent id -> last heartbeat of agents found OFFLINE
 *   metrics  HASH  agent id -> latest AgentMetrics (protobuf, base64)
 *
 * A heartbeat is one script call: it records the beat and renews every lease the agent names,
 * but only where token and holder match the lease (a stale token renews nothing). Expired leases
 * are taken out atomically by one sweeper, so two sweepers never expire the same lease twice.
 * Redis may lose everything (it keeps nothing on disk): the `epoch` key tells. Until the store is
 * rebuilt from Postgres (leases granted at claim, stretched by one TTL) renewals report "unknown"
 * and are treated as valid, so losing Redis never loses a run.
 */
import type { Redis } from "ioredis";
import { type Scripts, scripts } from "./lease-scripts.js";

/** A lease to record. */
export interface LeaseGrant {
  runId: string;
  token: bigint;
  agentId: string;
  expireMs: number;
  cancel?: boolean;
}

/** Result of renewing one lease: cancel flag when valid; "unknown" while the store is rebuilt. */
export type Renewal = { valid: true; cancel: boolean } | { valid: false } | { valid: "unknown" };

/** An expired lease taken out of the store. */
export interface ExpiredLease {
  runId: string;
  token: bigint;
  agentId: string;
  expireMs: number;
}

export class LeaseStore {
  readonly #k: Record<"leases" | "lease" | "epoch" | "hb" | "metrics" | "lasthb", string>;
  readonly #s: Scripts;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.#s = scripts(redis);
    this.#k = {
      leases: `${prefix}leases`,
      lease: `${prefix}lease`,
      epoch: `${prefix}epoch`,
      hb: `${prefix}hb`,
      metrics: `${prefix}metrics`,
      lasthb: `${prefix}lasthb`,
    };
  }

  /** Every key this store uses (tests delete them). */
  keys(): string[] {
    return Object.values(this.#k);
  }

  /** Records leases (after the claim committed in Postgres). */
  async grant(grants: readonly LeaseGrant[]): Promise<void> {
    if (grants.length === 0) return;
    const args: string[] = [];
    for (const g of grants)
      args.push(g.runId, String(g.expireMs), `${g.token}|${g.agentId}|${g.cancel ? 1 : 0}`);
    await this.#s.amGrant(this.#k.leases, this.#k.lease, ...args);
  }

  /** Heartbeat of an agent: records it (and its metrics) and renews the leases named. */
  async renew(
    agentId: string,
    runs: readonly { runId: string; token: bigint }[],
    nowMs: number,
    expireMs: number,
    metrics = "",
  ): Promise<Renewal[]> {
    const args = [agentId, String(nowMs), String(expireMs), metrics];
    for (const r of runs) args.push(r.runId, r.token.toString());
    const k = this.#k;
    const out = await this.#s.amRenew(k.leases, k.lease, k.epoch, k.hb, k.metrics, k.lasthb, ...args);
    if (!Array.isArray(out)) return runs.map(() => ({ valid: "unknown" }));
    return out.map((r) => (r < 0 ? { valid: false } : { valid: true, cancel: r === 1 }));
  }

  /** Ends leases (completion, rejection, revocation). */
  async release(runIds: readonly string[]): Promise<void> {
    if (runIds.length === 0) return;
    await this.#s.amRelease(this.#k.leases, this.#k.lease, ...runIds);
  }

  /** Flags a lease as cancel-requested, so heartbeat acks carry it. */
  async markCancel(runId: string, token: bigint): Promise<void> {
    await this.#s.amMarkCancel(this.#k.lease, runId, token.toString());
  }

  /** Takes out up to `limit` leases expired at `nowMs`; undefined when the store must be rebuilt. */
  async takeExpired(nowMs: number, limit: number): Promise<ExpiredLease[] | undefined> {
    const k = this.#k;
    const out = await this.#s.amTakeExpired(k.leases, k.lease, k.epoch, String(nowMs), String(limit));
    if (out === null) return undefined;
    const expired: ExpiredLease[] = [];
    for (let i = 0; i + 2 < out.length; i += 3) {
      const [token = "0", agentId = ""] = (out[i + 1] ?? "").split("|");
      expired.push({
        runId: out[i] ?? "",
        token: BigInt(token || "0"),
        agentId,
        expireMs: Number(out[i + 2]),
      });
    }
    return expired;
  }

  /** Live expiries of leases (undefined where none). */
  async expiries(runIds: readonly string[]): Promise<(number | undefined)[]> {
    if (runIds.length === 0) return [];
    const scores = await this.redis.zmscore(this.#k.leases, ...runIds);
    return scores.map((s) => (s === null ? undefined : Number(s)));
  }

  /** Whether the store is complete (false after Redis lost its data). */
  async intact(): Promise<boolean> {
    return (await this.redis.exists(this.#k.epoch)) === 1;
  }

  /**
   * Refills the store from Postgres: leases not present are added (never shortened), live
   * agents get a fresh beat so the offline detector gives them a full grace period.
   */
  async rebuild(
    leases: readonly LeaseGrant[],
    liveAgentIds: readonly string[],
    nowMs: number,
  ): Promise<void> {
    const m = this.redis.multi();
    for (const g of leases) {
      m.zadd(this.#k.leases, "NX", g.expireMs, g.runId);
      m.hsetnx(this.#k.lease, g.runId, `${g.token}|${g.agentId}|${g.cancel ? 1 : 0}`);
    }
    for (const a of liveAgentIds) m.zadd(this.#k.hb, "NX", nowMs, a);
    m.set(this.#k.epoch, String(nowMs));
    await m.exec();
  }

  /** Adds leases missing from the store (reconciliation after a crash between commit and grant). */
  async addMissing(leases: readonly LeaseGrant[]): Promise<void> {
    if (leases.length === 0) return;
    const m = this.redis.multi();
    for (const g of leases) {
      m.zadd(this.#k.leases, "NX", g.expireMs, g.runId);
      m.hsetnx(this.#k.lease, g.runId, `${g.token}|${g.agentId}|${g.cancel ? 1 : 0}`);
    }
    await m.exec();
  }

  /** Agents whose last beat is older than `beforeMs`. */
  async staleAgents(beforeMs: number, limit = 200): Promise<{ agentId: string; lastMs: number }[]> {
    const out = await this.redis.zrangebyscore(this.#k.hb, "-inf", beforeMs, "WITHSCORES", "LIMIT", 0, limit);
    const res: { agentId: string; lastMs: number }[] = [];
    for (let i = 0; i + 1 < out.length; i += 2)
      res.push({ agentId: out[i] ?? "", lastMs: Number(out[i + 1]) });
    return res;
  }

  /** An agent was found OFFLINE: stop watching it, keep its last beat for display. */
  async parkAgent(agentId: string, lastMs: number): Promise<void> {
    await this.redis.multi().zrem(this.#k.hb, agentId).hset(this.#k.lasthb, agentId, String(lastMs)).exec();
  }

  /** Records a beat without renewing leases (connect). */
  async beat(agentId: string, nowMs: number): Promise<void> {
    await this.redis.multi().zadd(this.#k.hb, nowMs, agentId).hdel(this.#k.lasthb, agentId).exec();
  }

  /** Forgets an agent entirely (deregistration). */
  async forgetAgent(agentId: string): Promise<void> {
    await this.redis
      .multi()
      .zrem(this.#k.hb, agentId)
      .hdel(this.#k.lasthb, agentId)
      .hdel(this.#k.metrics, agentId)
      .exec();
  }

  /** Last heartbeat and metrics of agents. */
  async liveness(
    agentIds: readonly string[],
  ): Promise<{ lastMs: number | undefined; metrics: string | undefined }[]> {
    if (agentIds.length === 0) return [];
    const [hb, last, metrics] = await Promise.all([
      this.redis.zmscore(this.#k.hb, ...agentIds),
      this.redis.hmget(this.#k.lasthb, ...agentIds),
      this.redis.hmget(this.#k.metrics, ...agentIds),
    ]);
    return agentIds.map((_, i) => {
      const live = hb[i] ?? null;
      const parked = last[i] ?? null;
      const ms = live !== null ? Number(live) : parked !== null ? Number(parked) : undefined;
      return { lastMs: ms, metrics: metrics[i] ?? undefined };
    });
  }
}
