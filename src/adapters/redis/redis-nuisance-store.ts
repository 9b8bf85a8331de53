import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { CALLS_PER_NUMBER_CAP, type CallStanding, type NuisanceFlag, type NuisanceStore } from '../../policy/nuisance.js';
import type { PolicyRedisKeys } from './keys.js';

/**
 * Counts a call and reads the flag in one script. KEYS: the number's calls (zset), its flag.
 * ARGV: the call's time in ms, the window's start in ms (exclusive), a unique member, the cap, the
 * window in seconds (the zset's expiry). Returns { calls in the window, the flag's JSON or false }.
 */
const COUNT_CALL = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[4]) - 1)
local calls = redis.call('ZCARD', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return { calls, redis.call('GET', KEYS[2]) }
`;

interface NuisanceScripts {
  hotlineCountCall(calls: string, flag: string, at: string, since: string, member: string, cap: string, windowSeconds: string): Promise<[number, string | null]>;
}

/** Nuisance flags (string with PX to expiry, listed in a zset by expiry) and call counts (zset per number). */
export class RedisNuisanceStore implements NuisanceStore {
  private readonly scripts: NuisanceScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: PolicyRedisKeys,
    private readonly listCap = 10_000,
  ) {
    if (!('hotlineCountCall' in redis)) redis.defineCommand('hotlineCountCall', { numberOfKeys: 2, lua: COUNT_CALL });
    this.scripts = redis as unknown as NuisanceScripts;
  }

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
    return unexpired(await this.redis.get(this.keys.nuisanceFlag(numberHash)), now);
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

  async countCall(numberHash: string, at: Date, windowSeconds: number): Promise<CallStanding> {
    const ms = at.getTime();
    const [recentCalls, raw] = await this.scripts.hotlineCountCall(
      this.keys.nuisanceCalls(numberHash),
      this.keys.nuisanceFlag(numberHash),
      String(ms),
      String(ms - windowSeconds * 1000),
      `${ms}:${randomUUID().slice(0, 8)}`,
      String(CALLS_PER_NUMBER_CAP),
      String(windowSeconds),
    );
    return { flag: unexpired(raw, at), recentCalls };
  }

  async recentCalls(numberHash: string, at: Date, windowSeconds: number): Promise<number> {
    return this.redis.zcount(this.keys.nuisanceCalls(numberHash), `(${at.getTime() - windowSeconds * 1000}`, '+inf');
  }
}

/** A stored flag, unless it expired: Redis drops it by its PX, this covers the millisecond between. */
function unexpired(raw: string | null, now: Date): NuisanceFlag | null {
  if (raw === null) return null;
  const flag = JSON.parse(raw) as NuisanceFlag;
  return Date.parse(flag.expiresAt) <= now.getTime() ? null : flag;
}
