// Builds the service as main.ts does — stores, bus, transfer service, HTTP app — for one test: in
// memory, or on a real Redis when a URL is given. A TestCallControl stands in for the switch.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { MemoryEventBus } from '../../src/adapters/memory/memory-event-bus.js';
import { MemoryTicketStore, MemoryTransferStore } from '../../src/adapters/memory/memory-stores.js';
import { redisKeys } from '../../src/adapters/redis/keys.js';
import { connectRedis } from '../../src/adapters/redis/redis-connection.js';
import { RedisDayStats } from '../../src/adapters/redis/redis-day-stats.js';
import { RedisStreamEventBus } from '../../src/adapters/redis/redis-stream-event-bus.js';
import { RedisTicketStore, RedisTransferStore } from '../../src/adapters/redis/redis-stores.js';
import { RedisTransferLease } from '../../src/adapters/redis/transfer-lease.js';
import { buildApp } from '../../src/http/app.js';
import { MemoryDayStats, type DayStats } from '../../src/feed/day-stats.js';
import type { FeedHub, FeedSettings } from '../../src/feed/feed-hub.js';
import { LocalFeedLog } from '../../src/feed/local-feed-log.js';
import { createLogger } from '../../src/logger.js';
import type { EventBus, FeedLog, HealthCheck, TicketStore, TransferStore } from '../../src/ports.js';
import { TransferService } from '../../src/transfer/transfer-service.js';
import type { TransferRequestInput } from '../../src/transfer/transfer-request.js';
import { TestCallControl } from './test-call-control.js';

export const KEYS = {
  agent: 'test-agent-key-0123456789',
  seat: 'test-seat-key-0123456789',
  supervisor: 'test-supervisor-key-0123456789',
  pbx: 'test-pbx-key-0123456789',
} as const;

export const DESKS = {
  '12345': { number: '12345', trunks: ['to12345'] },
  '110': { number: '110', trunks: ['sw110', 'sw110-backup'] },
  '119': { number: '119', trunks: ['sw119'] },
} as const;

export interface Harness {
  readonly app: FastifyInstance;
  readonly service: TransferService;
  readonly callControl: TestCallControl;
  readonly tickets: TicketStore;
  readonly transfers: TransferStore;
  readonly bus: EventBus;
  /** The live feed's hub on this instance. */
  readonly feed: FeedHub;
  /** Listens on a free loopback port (for websocket and browser tests); returns the base URL. */
  listen(): Promise<string>;
  /** The Redis key namespace, so a second instance can share this one's data. */
  readonly namespace: string | null;
  /** Every log line written, parsed. */
  readonly logs: Record<string, unknown>[];
  readonly rawLogs: string[];
  /** Cuts this instance off Redis at once, as a crash would (its leases then lapse). */
  cutOffRedis(): void;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly redisUrl?: string;
  readonly namespace?: string;
  readonly answerTimeoutSeconds?: number;
  readonly withSwitch?: boolean;
  readonly redisCommandTimeoutMs?: number;
  readonly feed?: Partial<FeedSettings>;
  /** Entries the feed's Redis Stream keeps (default 10,000). */
  readonly feedHistorySize?: number;
  /** Where the feed's stream reader connects, when it must differ from redisUrl (a cuttable proxy). */
  readonly feedReaderUrl?: string;
  /** 'capture' (default) keeps every debug line for assertions; 'discard' logs at info to nowhere. */
  readonly logs?: 'capture' | 'discard';
  /** On Redis: this instance's lease holder id and TTL, and how often it looks for orphans to take over. */
  readonly lease?: { readonly holderId: string; readonly ttlMs: number; readonly takeoverIntervalMs: number };
}

export const FEED_TEST_SETTINGS: FeedSettings = {
  allowedOrigins: ['http://wall.example.test'],
  maxPayloadBytes: 4096,
  maxBufferedBytes: 1024 * 1024,
  heartbeatMs: 15_000,
  subscribeTimeoutMs: 5000,
  replayLimit: 1000,
  timeZone: 'Asia/Shanghai',
  desksByKey: {},
  statsIntervalMs: 20,
  switchAnnounceMs: 60_000,
  instanceId: 'test',
};

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const rawLogs: string[] = [];
  const logs: Record<string, unknown>[] = [];
  const capture = options.logs !== 'discard';
  const sink = new Writable({
    decodeStrings: false,
    write(chunk: Buffer | string, _enc, done) {
      if (capture) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
          rawLogs.push(line);
          logs.push(JSON.parse(line) as Record<string, unknown>);
        }
      }
      done();
    },
  });
  const logger = createLogger(capture ? 'debug' : 'info', sink);
  const clock = { now: () => new Date() };

  let tickets: TicketStore;
  let transfers: TransferStore;
  let bus: EventBus;
  let feedLog: FeedLog;
  let stats: DayStats;
  let closeFeedLog = () => undefined as void;
  const clients: Redis[] = [];
  let lease: RedisTransferLease | undefined;
  const namespace = options.redisUrl ? (options.namespace ?? `t${randomUUID().slice(0, 8)}`) : null;
  const healthChecks: HealthCheck[] = [];
  if (options.redisUrl) {
    const timeouts = { commandTimeoutMs: options.redisCommandTimeoutMs ?? 500, connectTimeoutMs: 1000 };
    const redis = connectRedis(options.redisUrl, timeouts);
    // The stream reader blocks in XREAD for up to a second: its command timeout must be longer.
    const subscriber = connectRedis(options.feedReaderUrl ?? options.redisUrl, { ...timeouts, commandTimeoutMs: 3000 });
    for (const client of [redis, subscriber]) {
      client.on('error', () => undefined);
      clients.push(client);
      await new Promise<void>((resolve) => (client.status === 'ready' ? resolve() : client.once('ready', () => resolve())));
    }
    const keys = redisKeys(namespace ?? 'unused');
    tickets = new RedisTicketStore(redis, keys);
    const feedHistory = options.feedHistorySize ?? 10_000;
    transfers = new RedisTransferStore(redis, keys, {
      transferTtlSeconds: 3600,
      idempotencyTtlSeconds: 3600,
      feedLog: { key: keys.feedLog, maxLength: feedHistory },
    });
    const streamBus = new RedisStreamEventBus({ writer: redis, reader: subscriber, key: keys.feedLog, maxLength: feedHistory });
    bus = streamBus;
    feedLog = streamBus;
    stats = new RedisDayStats(redis, keys);
    if (options.lease) {
      lease = new RedisTransferLease(redis, { holderId: options.lease.holderId, ttlMs: options.lease.ttlMs, keyPrefix: keys.leasePrefix });
    }
    healthChecks.push({ name: 'store', check: async () => ({ healthy: redis.status === 'ready', detail: `redis ${redis.status}` }) });
  } else {
    tickets = new MemoryTicketStore(clock);
    bus = new MemoryEventBus();
    transfers = new MemoryTransferStore(tickets, bus);
    const local = new LocalFeedLog(bus, 10_000);
    feedLog = local;
    closeFeedLog = () => local.close();
    stats = new MemoryDayStats();
  }

  const service = new TransferService({
    tickets,
    transfers,
    bus,
    clock,
    ids: { uuid: () => randomUUID() },
    logger,
    desks: DESKS,
    settings: {
      ticketTtlSeconds: 3600,
      answerTimeoutSeconds: options.answerTimeoutSeconds ?? 30,
      publicBaseUrl: 'http://127.0.0.1:8080',
      deferredWriteRetryMs: 100,
      answerGuardGraceMs: 200,
      ...(options.lease ? { takeoverIntervalMs: options.lease.takeoverIntervalMs } : {}),
    },
    ...(lease ? { lease } : {}),
  });
  const callControl = new TestCallControl();
  if (options.withSwitch !== false) service.attachSwitch(callControl);

  let feed: FeedHub | null = null;
  const app = await buildApp({
    service,
    apiKeys: Object.entries(KEYS).map(([role, key]) => ({ name: `test-${role}`, role: role as keyof typeof KEYS, key })),
    healthChecks,
    logger,
    bodyLimitBytes: 65536,
    feed: {
      log: feedLog,
      bus,
      transfers,
      stats,
      settings: { ...FEED_TEST_SETTINGS, ...options.feed },
      onHub: (hub) => (feed = hub),
    },
  });
  await app.ready();
  if (!feed) throw new Error('the feed did not start');

  return {
    app,
    service,
    callControl,
    tickets,
    transfers,
    bus,
    feed,
    async listen() {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const address = app.server.address();
      if (typeof address !== 'object' || address === null) throw new Error('not listening');
      return `http://127.0.0.1:${address.port}`;
    },
    namespace,
    logs,
    rawLogs,
    cutOffRedis() {
      for (const client of clients) client.disconnect(false);
    },
    async close() {
      await app.close();
      await service.close();
      closeFeedLog();
      await bus.close();
      await Promise.allSettled(clients.map((c) => c.quit()));
    },
  };
}

let sequence = 0;
/** A valid transfer request body; each call gets a fresh citizen leg and ticket. */
export function transferBody(overrides: Partial<TransferRequestInput> = {}): TransferRequestInput {
  sequence += 1;
  return {
    citizenLeg: { legId: randomUUID() },
    agent: { agentId: 'A1001', seatId: 'S07', legId: randomUUID() },
    from: '12345',
    to: '110',
    mode: 'blind',
    priority: 'normal',
    callerNumber: '13800138000',
    ticket: {
      ticketId: `GD-2026-${String(sequence).padStart(6, '0')}-${randomUUID().slice(0, 4)}`,
      kind: 'work-order',
      categoryCode: '0301',
      divisionCode: '450300',
      summary: '市民反映小区门口有人持刀争吵，情绪激动，请求警方处置。',
      location: '桂林市七星区漓江路 18 号',
      urgency: 'urgent',
      callerName: '王先生',
    },
    ...overrides,
  };
}

export function auth(role: keyof typeof KEYS): Record<string, string> {
  return { authorization: `Bearer ${KEYS[role]}` };
}
