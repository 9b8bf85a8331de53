import type { Redis } from 'ioredis';
import { DAY_COUNTS, RECENT_FAILURES, type DayCount, type DayStats } from '../../feed/day-stats.js';
import { FailureSummarySchema, type DayCounts, type FailureSummary } from '../../feed/protocol.js';
import type { RedisKeys } from './keys.js';

const TTL_SECONDS = 3 * 24 * 3600;
const FAILURES_CAP = 200;

interface PendingCount {
  readonly day: string;
  readonly count: DayCount;
  readonly transferId: string;
  readonly failure: FailureSummary | null;
}

/**
 * The day's counts shared by every instance: one set of transfer ids per count, a capped failure list.
 * Counts are written in batches, one round trip per `batchMs` however many transfers move meanwhile:
 * at 200 transfers a second, one write per counted transition would be 400 round trips a second.
 */
export class RedisDayStats implements DayStats {
  private pending: { entries: PendingCount[]; written: Promise<void> } | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly batchMs = 50,
  ) {}

  record(day: string, count: DayCount, transferId: string, failure: FailureSummary | null): Promise<void> {
    if (!this.pending) {
      const entries: PendingCount[] = [];
      const written = new Promise<void>((resolve) => setTimeout(resolve, this.batchMs)).then(() => this.write(entries));
      this.pending = { entries, written };
    }
    this.pending.entries.push({ day, count, transferId, failure });
    return this.pending.written;
  }

  private async write(entries: readonly PendingCount[]): Promise<void> {
    this.pending = null;
    const batch = this.redis.multi();
    const touched = new Set<string>();
    for (const { day, count, transferId, failure } of entries) {
      const set = this.keys.feedDay(day, count);
      batch.sadd(set, transferId);
      touched.add(set);
      if (failure) {
        const list = this.keys.feedDay(day, 'failures');
        // The member is the same JSON on every instance (made from the same event), so ZADD is idempotent.
        batch.zadd(list, Date.parse(failure.at), JSON.stringify(failure)).zremrangebyrank(list, 0, -(FAILURES_CAP + 1));
        touched.add(list);
      }
    }
    for (const key of touched) batch.expire(key, TTL_SECONDS);
    await batch.exec();
  }

  async read(day: string): Promise<DayCounts> {
    // What this instance counted a moment ago is part of the answer.
    await this.pending?.written.catch(() => undefined);
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
