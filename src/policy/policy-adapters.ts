// The policy's adapters as configuration chooses them: nuisance flags in Redis (or memory), call
// records in PostgreSQL (or memory), and the retention sweep. Called by main.ts only.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { MemoryNuisanceStore } from '../adapters/memory/memory-nuisance-store.js';
import { policyRedisKeys } from '../adapters/redis/keys.js';
import { RedisNuisanceStore } from '../adapters/redis/redis-nuisance-store.js';
import type { Config } from '../config.js';
import type { CallRecordStore } from '../records/call-record.js';
import { MemoryCallRecords } from '../records/memory-call-records.js';
import { PostgresCallRecords } from '../records/postgres-call-records.js';
import type { NuisanceStore } from './nuisance.js';

const RETENTION_SWEEP_MS = 3_600_000;

/** redis: the stores' command connection (URL or Sentinel), owned and closed by main; null in memory. */
export async function buildPolicyAdapters(
  config: Config,
  logger: Logger,
  redis: Redis | null,
): Promise<{ nuisance: NuisanceStore; records: CallRecordStore; close(): Promise<void> }> {
  const closers: (() => Promise<unknown>)[] = [];
  const nuisance: NuisanceStore =
    redis === null ? new MemoryNuisanceStore() : new RedisNuisanceStore(redis, policyRedisKeys(config.redis.namespace));
  let records: CallRecordStore;
  if (config.records.postgresUrl === null) {
    logger.warn('call records are kept in memory: set DATABASE_URL for durable records');
    records = new MemoryCallRecords(config.records.memoryCap);
  } else {
    const pg = new PostgresCallRecords({ connectionString: config.records.postgresUrl });
    // A database down at start-up must not stop transfers: the schema is made when it comes back.
    await pg.migrate().catch((err: unknown) =>
      logger.error({ err: err instanceof Error ? err.message : String(err) }, 'call records database unavailable at start-up'),
    );
    records = pg;
  }
  closers.push(() => records.close());
  const sweep = async () => {
    const cutoff = new Date(Date.now() - config.records.retentionDays * 86_400_000);
    const removed = await records.purge(cutoff).catch((err: unknown) => {
      logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'retention sweep failed');
      return 0;
    });
    if (removed > 0) logger.info({ removed, retentionDays: config.records.retentionDays }, 'call records past retention removed');
  };
  const timer = setInterval(() => void sweep(), RETENTION_SWEEP_MS);
  timer.unref();
  void sweep();
  return {
    nuisance,
    records,
    async close() {
      clearInterval(timer);
      await Promise.allSettled(closers.map((c) => c()));
    },
  };
}
