import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { CALLS_PER_NUMBER_CAP, type NuisanceFlag, type NuisanceStore } from '../../policy/nuisance.js';
import type { PolicyRedisKeys } from './keys.js';

/** Nuisance flags (string with PX to expiry, listed in a zset by expiry) and call counts (zset per number). */
export class RedisNuisanceStore implements NuisanceStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: PolicyRedisKeys,
    private readonly listCap = 10_000,
  ) {}

  async flag(flag: NuisanceFlag): Promise<void> {
    const ttlMs = Math.max(1, Date.parse(flag.expiresAt) - Date.now());
    await this.redis
      .multi()
      .set(this.keys.nuisanceFlag(flag.numberHash), JSON.stringify(flag), 'PX', ttlMs)
      .zadd(this.keys.nuisanceFlags, String(Date.parse(flag.expiresAt)), flag.numberHash)
      // The index is capped: past the cap the flags that expire soonest leave it first.
      .zremrangebyrank(this.keys.nuisanceFlags, '0', String(-this.listCap - 1))
      .exec();
  }

  async unflag(numberHash: string): Promise<boolean> {
    const [[, removed] = [null, 0]] = (await this.redis
      .multi()
      .del(this.keys.nuisanceFlag(numberHash))
      .zrem(this.keys.nuisanceFlags, numberHash)
      .exec()) ?? [];
    return Number(removed) > 0;
  }

  async get(numberHash: string, now: Date): Promise<NuisanceFlag | null> {
    const raw = await this.redis.get(this.keys.nuisanceFlag(numberHash));
    if (raw === null) return null;
    const flag = JSON.parse(raw) as NuisanceFlag;
    return Date.parse(flag.expiresAt) <= now.getTime() ? null : flag;
  }

  async list(now: Date, limit: number): Promise<NuisanceFlag[]> {
    await this.redis.zremrangebyscore(this.keys.nuisanceFlags, '-inf', String(now.getTime()));
    const hashes = await this.redis.zrange(this.keys.nuisanceFlags, '0', '-1');
    if (hashes.length === 0) return [];
    const raws = await this.redis.mget(hashes.map((h) => this.keys.nuisanceFlag(h)));
    return raws
      .filter((r): r is string => r !== null)
      .map((r) => JSON.parse(r) as NuisanceFlag)
      .filter((f) => Date.parse(f.expiresAt) > now.getTime())
      .sort((a, b) => b.flaggedAt.localeCompare(a.flaggedAt))
      .slice(0, limit);
  }

  async countCall(numberHash: string, at: Date, windowSeconds: number): Promise<number> {
    const key = this.keys.nuisanceCalls(numberHash);
    const results = await this.redis
      .multi()
      .zremrangebyscore(key, '-inf', String(at.getTime() - windowSeconds * 1000))
      .zadd(key, String(at.getTime()), `${at.getTime()}:${randomUUID().slice(0, 8)}`)
      .zremrangebyrank(key, '0', String(-CALLS_PER_NUMBER_CAP - 1))
      .zcard(key)
      .expire(key, windowSeconds)
      .exec();
    const card = results?.[3];
    if (!card || card[0]) throw card?.[0] ?? new Error('redis transaction aborted');
    return Number(card[1]);
  }

  async recentCalls(numberHash: string, at: Date, windowSeconds: number): Promise<number> {
    return this.redis.zcount(this.keys.nuisanceCalls(numberHash), `(${at.getTime() - windowSeconds * 1000}`, '+inf');
  }
}
