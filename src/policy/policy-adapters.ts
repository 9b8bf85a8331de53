// The policy's adapters as configuration chooses them: nuisance flags in Redis (or memory), call
// records in PostgreSQL (or memory), and the retention sweep. Called by main.ts only.
import type { Logger } from 'pino';
import { MemoryNuisanceStore } from '../adapters/memory/memory-nuisance-store.js';
import { policyRedisKeys } from '../adapters/redis/keys.js';
import { connectRedis } from '../adapters/redis/redis-connection.js';
import { RedisNuisanceStore } from '../adapters/redis/redis-nuisance-store.js';
import type { Config } from '../config.js';
import type { CallRecordStore } from '../records/call-record.js';
import { MemoryCallRecords } from '../records/memory-call-records.js';
import { PostgresCallRecords } from '../records/postgres-call-records.js';
import type { NuisanceStore } from './nuisance.js';

const RETENTION_SWEEP_MS = 3_600_000;

export async function buildPolicyAdapters(
  config: Config,
  logger: Logger,
): Promise<{ nuisance: NuisanceStore; records: CallRecordStore; close(): Promise<void> }> {
  const closers: (() => Promise<unknown>)[] = [];
  let nuisance: NuisanceStore;
  if (config.redis.url === null) {
    nuisance = new MemoryNuisanceStore();
  } else {
    const redis = connectRedis(config.redis.url, { commandTimeoutMs: config.redis.commandTimeoutMs, connectTimeoutMs: config.redis.connectTimeoutMs });
    redis.on('error', () => undefined);
    nuisance = new RedisNuisanceStore(redis, policyRedisKeys(config.redis.namespace));
    closers.push(() => redis.quit());
  }
  let records: CallRecordStore;
  if (config.records.postgresUrl === null) {
    logger.warn('call records are kept in memory: set DATABASE_URL for durable records');
    records = new MemoryCallRecords(config.records.memoryCap);
  } else {
    const pg = new PostgresCallRecords({ connectionString: config.records.postgresUrl });
    await pg.migrate();
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
