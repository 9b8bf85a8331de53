import type { Redis } from 'ioredis';
import { DAY_COUNTS, RECENT_FAILURES, type DayCount, type DayStats } from '../../feed/day-stats.js';
import { FailureSummarySchema, type DayCounts, type FailureSummary } from '../../feed/protocol.js';
import type { RedisKeys } from './keys.js';

const TTL_SECONDS = 3 * 24 * 3600;
const FAILURES_CAP = 200;

/** The day's counts shared by every instance: one set of transfer ids per count, a capped failure list. */
export class RedisDayStats implements DayStats {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async record(
    day: string,
    count: DayCount,
    transferId: string,
    failure: FailureSummary | null,
  ): Promise<void> {
    const set = this.keys.feedDay(day, count);
    const batch = this.redis.multi().sadd(set, transferId).expire(set, TTL_SECONDS);
    if (failure) {
      const list = this.keys.feedDay(day, 'failures');
      // The member is the same JSON on every instance (made from the same event), so ZADD is idempotent.
      batch
        .zadd(list, Date.parse(failure.at), JSON.stringify(failure))
        .zremrangebyrank(list, 0, -(FAILURES_CAP + 1))
        .expire(list, TTL_SECONDS);
    }
    await batch.exec();
  }

  async read(day: string): Promise<DayCounts> {
    const batch = this.redis.multi();
    for (const count of DAY_COUNTS) batch.scard(this.keys.feedDay(day, count));
    batch.zrevrange(this.keys.feedDay(day, 'failures'), 0, RECENT_FAILURES - 1);
    const replies = (await batch.exec()) ?? [];
    const value = (i: number) => replies[i]?.[1];
    const failures = (value(DAY_COUNTS.length) as string[] | undefined) ?? [];
    return {
      day,
      requested: Number(value(0) ?? 0),
      connected: Number(value(1) ?? 0),
      failed: Number(value(2) ?? 0),
      cancelled: Number(value(3) ?? 0),
      recentFailures: failures.flatMap((raw) => {
        const parsed = FailureSummarySchema.safeParse(JSON.parse(raw));
        return parsed.success ? [parsed.data] : [];
      }),
    };
  }
}
