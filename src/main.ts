// The composition root: configuration → adapters → transfer service → HTTP server; graceful shutdown.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createEslCallControls } from './adapters/freeswitch/config.js';
import { DrachtioCallControl } from './adapters/sip/drachtio-call-control.js';
import { MemoryEventBus } from './adapters/memory/memory-event-bus.js';
import { MemoryTicketStore, MemoryTransferStore } from './adapters/memory/memory-stores.js';
import { redisKeys } from './adapters/redis/keys.js';
import { connectRedis } from './adapters/redis/redis-connection.js';
import { RedisDayStats } from './adapters/redis/redis-day-stats.js';
import { RedisStreamEventBus } from './adapters/redis/redis-stream-event-bus.js';
import { RedisTicketStore, RedisTransferStore } from './adapters/redis/redis-stores.js';
import { RedisTransferLease } from './adapters/redis/transfer-lease.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { MemoryDayStats, type DayStats } from './feed/day-stats.js';
import { LocalFeedLog } from './feed/local-feed-log.js';
import { buildApp } from './http/app.js';
import { createLogger } from './logger.js';
import type {
  CallControl,
  Clock,
  EventBus,
  FeedLog,
  HealthCheck,
  IdSource,
  TicketStore,
  TransferLease,
  TransferStore,
} from './ports.js';
import { TransferService } from './transfer/transfer-service.js';
import { buildPolicyAdapters } from './policy/policy-adapters.js';
import { LinkagePolicy, loadRoutingList, RoutingListError } from './policy/linkage-policy.js';

const FEED_READ_BLOCK_MS = 1000;
/** The defaults every setting starts from (environment variables and CONFIG_FILE override them). */
export const DEFAULTS_PATH = fileURLToPath(new URL('../config/default.json', import.meta.url));
const systemClock: Clock = { now: () => new Date() };
const randomIds: IdSource = { uuid: () => randomUUID() };

interface Stores {
  /** Present when instances share the store: only the lease holder drives a transfer. */
  lease?: TransferLease;
  tickets: TicketStore;
  transfers: TransferStore;
  bus: EventBus;
  feedLog: FeedLog;
  dayStats: DayStats;
  healthChecks: HealthCheck[];
  /** The command connection, shared with the policy's nuisance store; null in memory. */
  redis: Redis | null;
  close(): Promise<void>;
}

function buildStores(config: Config): Stores {
  const target = config.redis.sentinel ? { sentinel: config.redis.sentinel } : config.redis.url;
  if (target === null) {
    const bus = new MemoryEventBus();
    const tickets = new MemoryTicketStore(systemClock);
    return {
      tickets,
      transfers: new MemoryTransferStore(tickets, bus),
      bus,
      feedLog: new LocalFeedLog(bus, config.feed.historySize),
      dayStats: new MemoryDayStats(),
      healthChecks: [{ name: 'store', check: async () => ({ healthy: true, detail: 'embedded in-memory store (one instance, not durable)' }) }],
      redis: null,
      close: async () => undefined,
    };
  }
  const timeouts = { commandTimeoutMs: config.redis.commandTimeoutMs, connectTimeoutMs: config.redis.connectTimeoutMs };
  const redis = connectRedis(target, timeouts);
  // The feed's stream reader blocks in XREAD for up to a second: its command timeout must be longer.
  const subscriber = connectRedis(target, { ...timeouts, commandTimeoutMs: FEED_READ_BLOCK_MS + 2000 });
  const keys = redisKeys(config.redis.namespace);
  const quiet = (client: Redis) => client.on('error', () => undefined); // state is reported by /health/ready
  quiet(redis);
  quiet(subscriber);
  const bus = new RedisStreamEventBus({
    writer: redis,
    reader: subscriber,
    key: keys.feedLog,
    maxLength: config.feed.historySize,
    blockMs: FEED_READ_BLOCK_MS,
  });
  return {
    tickets: new RedisTicketStore(redis, keys),
    transfers: new RedisTransferStore(redis, keys, {
      transferTtlSeconds: config.transfers.ttlSeconds,
      idempotencyTtlSeconds: config.transfers.idempotencyTtlSeconds,
      feedLog: { key: keys.feedLog, maxLength: config.feed.historySize },
    }),
    bus,
    feedLog: bus,
    dayStats: new RedisDayStats(redis, keys),
    redis,
    lease: new RedisTransferLease(redis, {
      holderId: `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`.replace(/[^A-Za-z0-9_.:-]/g, '_'),
      ttlMs: config.transfers.leaseTtlMs,
      keyPrefix: keys.leasePrefix,
    }),
    healthChecks: [
      {
        name: 'store',
        check: async () => {
          if (redis.status !== 'ready') return { healthy: false, detail: `redis ${redis.status}` };
          await redis.ping();
          return { healthy: true, detail: 'redis' };
        },
      },
    ],
    close: async () => {
      await Promise.allSettled([redis.quit(), subscriber.quit().catch(() => undefined)]);
    },
  };
}

/**
 * Call-control drivers named in config, attached to the service before they connect: one Event Socket
 * driver per FreeSWITCH instance, and the SIP edge, which also submits the transfers its INVITEs and
 * REFERs ask for. Each connects and reconnects on its own; its state shows in /health/ready and on the feed.
 */
function startSwitches(config: Config, logger: Logger, service: TransferService): CallControl[] {
  const freeswitch = createEslCallControls(config.freeswitch, { logger });
  const sipEdge = config.sip ? new DrachtioCallControl({ config: config.sip, ids: randomIds, logger }) : null;
  const switches: CallControl[] = [...freeswitch, ...(sipEdge ? [sipEdge] : [])];
  for (const callControl of switches) service.attachSwitch(callControl);
  sipEdge?.attach(service);
  for (const driver of freeswitch) driver.start();
  sipEdge?.start();
  return switches;
}

/** The whole service, built from its configuration. */
export interface Composition {
  readonly app: FastifyInstance;
  readonly service: TransferService;
  readonly switches: readonly CallControl[];
  /** Closes the HTTP server, the service, the switches and the stores; call it after service.drain(). */
  close(): Promise<void>;
}

/**
 * Builds the service as it runs: stores, routing policy, call records, transfer service, switch drivers
 * and the HTTP app (not yet listening). `switches` stands in for the drivers named in config: the
 * benchmarks measure the service as deployed, with a test peer for the switch. Those are attached as
 * given; starting them is the caller's part, as the configured ones are started here.
 */
export async function compose(
  config: Readonly<Config>,
  logger: Logger,
  options: { switches?: readonly CallControl[] } = {},
): Promise<Composition> {
  // Read before any connection is opened: a bad list stops the service with its reason.
  const routingList = loadRoutingList(
    fileURLToPath(new URL(`../config/${config.policy.routingList}`, import.meta.url)),
    Object.keys(config.desks),
  );
  const stores = buildStores(config);
  const policyAdapters = await buildPolicyAdapters(config, logger, stores.redis);
  const policy = new LinkagePolicy({
    list: routingList,
    nuisance: policyAdapters.nuisance,
    records: policyAdapters.records,
    bus: stores.bus,
    clock: systemClock,
    logger,
    healthChecks: stores.healthChecks,
    settings: { ...config.policy, nuisance: config.policy.nuisance, desksByKey: config.feed.desksByKey },
    defaultMetrics: true,
  });
  const service = new TransferService({
    tickets: stores.tickets,
    transfers: stores.transfers,
    bus: stores.bus,
    onTransition: (event) => policy.observe(event),
    policy: policy.routing,
    clock: systemClock,
    ids: randomIds,
    logger,
    desks: config.desks,
    settings: {
      ticketTtlSeconds: config.tickets.ttlSeconds,
      answerTimeoutSeconds: config.transfers.answerTimeoutSeconds,
      publicBaseUrl: config.http.publicBaseUrl,
      deferredWriteRetryMs: config.transfers.deferredWriteRetryMs,
      answerGuardGraceMs: 5000,
      takeoverIntervalMs: Math.ceil(config.transfers.leaseTtlMs / 2),
    },
    ...(stores.lease ? { lease: stores.lease } : {}),
  });
  let switches: readonly CallControl[];
  if (options.switches) {
    for (const callControl of options.switches) service.attachSwitch(callControl);
    switches = options.switches;
  } else {
    switches = startSwitches(config, logger, service);
  }

  const app = await buildApp({
    service,
    apiKeys: config.auth.keys,
    healthChecks: [...stores.healthChecks, policy.recordsCheck],
    logger,
    bodyLimitBytes: config.http.bodyLimitBytes,
    feed: {
      log: stores.feedLog,
      bus: stores.bus,
      transfers: stores.transfers,
      stats: stores.dayStats,
      settings: { ...config.feed, instanceId: `${hostname()}:${process.pid}` },
      onHub: (hub) => policy.metrics.countFeedClients(() => hub.clientCount),
    },
    policy: policy.routes(service),
  });
  return {
    app,
    service,
    switches,
    async close() {
      await app.close();
      await service.close();
      await Promise.allSettled(switches.map((s) => s.close()));
      // Records still waiting for their store get a few seconds more, then are given up (logged).
      await policy.writer.close(5_000);
      await policyAdapters.close();
      await stores.bus.close();
      await stores.close();
    },
  };
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config: Readonly<Config>;
  try {
    config = loadConfig({ defaultsPath: DEFAULTS_PATH, env });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  if (config.auth.developmentKeys) logger.warn('using the development API keys from config/default.json');

  let composition: Composition;
  try {
    composition = await compose(config, logger);
  } catch (err) {
    if (err instanceof RoutingListError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const { app, service, switches } = composition;
  if (switches.length === 0) logger.warn('no call-control driver is configured: transfers are refused with 503');
  await app.listen({ host: config.http.host, port: config.http.port });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, live: service.liveCount }, 'shutting down: no new transfers, letting live ones finish');
    const { unfinished } = await service.drain(config.transfers.drainTimeoutSeconds * 1000);
    if (unfinished > 0) logger.warn({ unfinished }, 'drain deadline passed with transfers still live');
    await composition.close();
    logger.info('stopped');
    logger.flush();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
