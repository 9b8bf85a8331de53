// Builds the service with the linkage policy, as main.ts does: memory or real Redis for stores and
// nuisance flags, memory or real PostgreSQL for call records. A TestCallControl stands in for the switch.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { MemoryEventBus } from '../../src/adapters/memory/memory-event-bus.js';
import { MemoryNuisanceStore } from '../../src/adapters/memory/memory-nuisance-store.js';
import { MemoryTicketStore, MemoryTransferStore } from '../../src/adapters/memory/memory-stores.js';
import { policyRedisKeys, redisKeys } from '../../src/adapters/redis/keys.js';
import { connectRedis } from '../../src/adapters/redis/redis-connection.js';
import { RedisStreamEventBus } from '../../src/adapters/redis/redis-stream-event-bus.js';
import { RedisNuisanceStore } from '../../src/adapters/redis/redis-nuisance-store.js';
import { RedisTicketStore, RedisTransferStore } from '../../src/adapters/redis/redis-stores.js';
import { buildApp } from '../../src/http/app.js';
import { createLogger } from '../../src/logger.js';
import { LinkagePolicy, loadRoutingList } from '../../src/policy/linkage-policy.js';
import type { NuisanceStore } from '../../src/policy/nuisance.js';
import type { EventBus, TicketStore, TransferStore } from '../../src/ports.js';
import type { CallRecordStore } from '../../src/records/call-record.js';
import { MemoryCallRecords } from '../../src/records/memory-call-records.js';
import { TransferService } from '../../src/transfer/transfer-service.js';
import { KEYS } from './harness.js';
import { TestCallControl } from './test-call-control.js';

export const POLICY_DESKS = {
  '12345': { number: '12345', trunks: ['to12345'] },
  '110': { number: '110', trunks: ['sw110', 'sw110-backup'] },
  '119': { number: '119', trunks: ['sw119'] },
  '120': { number: '120', trunks: ['sw120'] },
  '122': { number: '122', trunks: ['sw122'] },
  '12313': { number: '12313', trunks: ['pstn'] },
  '12395': { number: '12395', trunks: ['pstn'] },
  '12348': { number: '12348', trunks: ['pstn'] },
} as const;

export const GUILIN_LIST = fileURLToPath(new URL('../../config/routing/guilin.json', import.meta.url));
export const URUMQI_LIST = fileURLToPath(new URL('../../config/routing/urumqi.json', import.meta.url));

export interface PolicyHarness {
  readonly app: FastifyInstance;
  readonly service: TransferService;
  readonly policy: LinkagePolicy;
  readonly callControl: TestCallControl;
  readonly records: CallRecordStore;
  readonly nuisance: NuisanceStore;
  readonly bus: EventBus;
  readonly rawLogs: string[];
  /** Moves the harness clock; the real clock when never set. */
  setNow(date: Date | null): void;
  close(): Promise<void>;
}

export async function startPolicyHarness(
  options: {
    redisUrl?: string;
    records?: CallRecordStore;
    unlisted?: 'allow' | 'refuse';
    feedbackDeadlineHours?: number;
    desksByKey?: Record<string, string[]>;
    /** The nuisance store, in place of the one the harness builds. */
    nuisance?: NuisanceStore;
  } = {},
): Promise<PolicyHarness> {
  const rawLogs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      rawLogs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createLogger('debug', sink);
  let fixed: Date | null = null;
  const clock = { now: () => fixed ?? new Date() };

  let tickets: TicketStore;
  let transfers: TransferStore;
  let bus: EventBus;
  let nuisance: NuisanceStore;
  const clients: Redis[] = [];
  if (options.redisUrl) {
    const timeouts = { commandTimeoutMs: 500, connectTimeoutMs: 1000 };
    const redis = connectRedis(options.redisUrl, timeouts);
    const subscriber = connectRedis(options.redisUrl, timeouts);
    for (const client of [redis, subscriber]) {
      client.on('error', () => undefined);
      clients.push(client);
      await new Promise<void>((resolve) => (client.status === 'ready' ? resolve() : client.once('ready', () => resolve())));
    }
    const ns = `p${randomUUID().slice(0, 8)}`;
    const keys = redisKeys(ns);
    tickets = new RedisTicketStore(redis, keys);
    transfers = new RedisTransferStore(redis, keys, {
      transferTtlSeconds: 3600,
      idempotencyTtlSeconds: 3600,
      feedLog: { key: keys.feedLog, maxLength: 10_000 },
    });
    bus = new RedisStreamEventBus({ writer: redis, reader: subscriber, key: keys.feedLog, maxLength: 10_000 });
    nuisance = new RedisNuisanceStore(redis, policyRedisKeys(ns));
  } else {
    tickets = new MemoryTicketStore(clock);
    bus = new MemoryEventBus();
    transfers = new MemoryTransferStore(tickets, bus);
    nuisance = new MemoryNuisanceStore();
  }
  nuisance = options.nuisance ?? nuisance;
  const records = options.records ?? new MemoryCallRecords();
  const policy = new LinkagePolicy({
    list: loadRoutingList(GUILIN_LIST, Object.keys(POLICY_DESKS)),
    nuisance,
    records,
    bus,
    clock,
    logger,
    healthChecks: [],
    settings: {
      nuisance: { hashKey: 'test-nuisance-hash-key-0123456789', flagTtlSeconds: 3600, repeatWindowSeconds: 600, repeatThreshold: 3 },
      unlistedCategories: options.unlisted ?? 'allow',
      feedbackDeadlineHours: options.feedbackDeadlineHours ?? 24,
      summaryUtcOffsetMinutes: 480,
      desksByKey: options.desksByKey ?? {},
    },
  });
  const service = new TransferService({
    tickets,
    transfers,
    bus,
    onTransition: (event) => policy.observe(event),
    clock,
    ids: { uuid: () => randomUUID() },
    logger,
    desks: POLICY_DESKS,
    settings: { ticketTtlSeconds: 3600, answerTimeoutSeconds: 30, answerGuardGraceMs: 200, publicBaseUrl: 'http://127.0.0.1:8080', deferredWriteRetryMs: 100 },
    policy: policy.routing,
  });
  const callControl = new TestCallControl();
  service.attachSwitch(callControl);
  const app = await buildApp({
    service,
    apiKeys: Object.entries(KEYS).map(([role, key]) => ({ name: `test-${role}`, role: role as keyof typeof KEYS, key })),
    healthChecks: [policy.recordsCheck],
    logger,
    bodyLimitBytes: 65536,
    policy: policy.routes(service),
  });
  await app.ready();
  return {
    app,
    service,
    policy,
    callControl,
    records,
    nuisance,
    bus,
    rawLogs,
    setNow(date) {
      fixed = date;
    },
    async close() {
      await app.close();
      await service.close();
      await policy.writer.close(1_000);
      await bus.close();
      await Promise.allSettled(clients.map((c) => c.quit()));
    },
  };
}
