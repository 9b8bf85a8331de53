// Live feed benchmark: N websocket supervisors on loopback, a bounded burst of transfer events, the
// delivery latency (event published → frame parsed by the client) and the service's memory. The
// service runs in a child process so its RSS is its own; the clients share the parent. Prints figures
// and the machine; never asserts. Targets (issue 5): p99 ≤ 50 ms, service RSS < 150 MB.
//
//   npm run bench:feed -- --clients 1000 --events 60 --interval-ms 50 [--redis-url redis://127.0.0.1:6379]
// With --redis-url the event goes through a Redis Stream (XADD, then the instance's XREAD) as it does
// between instances in production; without, through the in-process bus.
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import type { FeedHub } from '../src/feed/feed-hub.js';
import { summarise } from '../src/domain/transfer.js';
import { machine, percentile } from './bench-report.js';
import type { EventBus, FeedLog } from '../src/ports.js';

const { values: args } = parseArgs({
  options: {
    serve: { type: 'boolean', default: false },
    clients: { type: 'string', default: '1000' },
    events: { type: 'string', default: '60' },
    'interval-ms': { type: 'string', default: '50' },
    'timeout-s': { type: 'string', default: '60' },
    'redis-url': { type: 'string' },
  },
});

type ToChild = { type: 'burst'; events: number; intervalMs: number } | { type: 'memory' } | { type: 'stop' };
type FromChild =
  | { type: 'listening'; port: number; node: string; bare: Memory }
  | {
      type: 'burst-done';
      peak: Memory;
      published: number;
      fanout: { events: number; meanMs: number; maxMs: number; flushes: number; flushMeanMs: number; flushMaxMs: number };
      /** How long the service's event loop was held: what a transfer's own work waits meanwhile. */
      loopDelayMs: { p50: number; p99: number; max: number };
    }
  | { type: 'memory'; memory: Memory };
interface Memory {
  rssMb: number;
  heapUsedMb: number;
}

const mb = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;
const memory = (): Memory => {
  const m = process.memoryUsage();
  return { rssMb: mb(m.rss), heapUsedMb: mb(m.heapUsed) };
};

// ------------------------------------------------------------------ the service (child process)

async function serve(): Promise<void> {
  const bare = memory(); // node and the tsx loader, before anything of the service is loaded
  const { pino } = await import('pino');
  const { MemoryEventBus } = await import('../src/adapters/memory/memory-event-bus.js');
  const { MemoryTicketStore, MemoryTransferStore } = await import('../src/adapters/memory/memory-stores.js');
  const { MemoryDayStats } = await import('../src/feed/day-stats.js');
  const { LocalFeedLog } = await import('../src/feed/local-feed-log.js');
  const { buildApp } = await import('../src/http/app.js');
  const { TransferService } = await import('../src/transfer/transfer-service.js');

  const logger = pino({ level: 'warn' });
  const clock = { now: () => new Date() };
  const tickets = new MemoryTicketStore(clock);
  let bus: EventBus;
  let log: FeedLog;
  const redisUrl = args['redis-url'];
  if (redisUrl) {
    const { connectRedis } = await import('../src/adapters/redis/redis-connection.js');
    const { RedisStreamEventBus } = await import('../src/adapters/redis/redis-stream-event-bus.js');
    const timeouts = { commandTimeoutMs: 1000, connectTimeoutMs: 1000 };
    const stream = new RedisStreamEventBus({
      writer: connectRedis(redisUrl, timeouts),
      reader: connectRedis(redisUrl, { ...timeouts, commandTimeoutMs: 3000 }),
      key: `bench:${randomUUID().slice(0, 8)}:feed:log`,
      maxLength: 10_000,
    });
    bus = stream;
    log = stream;
  } else {
    const memory = new MemoryEventBus();
    bus = memory;
    log = new LocalFeedLog(memory, 10_000);
  }
  const transfers = new MemoryTransferStore(tickets, bus);
  const service = new TransferService({
    tickets,
    transfers,
    bus,
    clock,
    ids: { uuid: () => randomUUID() },
    logger,
    desks: { '12345': { number: '12345', trunks: ['a'] }, '110': { number: '110', trunks: ['b'] } },
    settings: {
      ticketTtlSeconds: 3600,
      answerTimeoutSeconds: 30,
      publicBaseUrl: 'http://127.0.0.1',
      deferredWriteRetryMs: 1000,
      answerGuardGraceMs: 5000,
    },
  });
  let feedHub: FeedHub | null = null;
  const app = await buildApp({
    service,
    apiKeys: [{ name: 'bench-supervisor', role: 'supervisor', key: 'bench-supervisor-key-0000' }],
    healthChecks: [],
    logger,
    bodyLimitBytes: 65536,
    feed: {
      log,
      bus,
      transfers,
      stats: new MemoryDayStats(),
      settings: {
        allowedOrigins: [],
        maxPayloadBytes: 4096,
        maxBufferedBytes: 1024 * 1024,
        heartbeatMs: 15_000,
        subscribeTimeoutMs: 30_000,
        replayLimit: 5000,
        timeZone: 'Asia/Shanghai',
        desksByKey: {},
        statsIntervalMs: 1000,
        switchAnnounceMs: 3_600_000,
        instanceId: 'bench',
      },
      onHub: (h) => (feedHub = h),
    },
  });
  const hub = feedHub as FeedHub | null;
  if (!hub) throw new Error('the feed did not start');
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const send = (m: FromChild) => process.send?.(m);
  send({ type: 'listening', port, node: process.version, bare });

  process.on('message', async (message: ToChild) => {
    if (message.type === 'memory') {
      // What stays once garbage is collected: the service's real footprint, not its litter.
      (globalThis as { gc?: () => void }).gc?.();
      return send({ type: 'memory', memory: memory() });
    }
    if (message.type === 'stop') {
      await app.close();
      process.exit(0);
    }
    if (message.type === 'burst') {
      let peak = memory();
      const sampler = setInterval(() => {
        const now = memory();
        if (now.rssMb > peak.rssMb) peak = now;
      }, 10);
      const base = {
        id: randomUUID(),
        direction: { from: '12345', to: '110' },
        mode: 'blind' as const,
        priority: 'normal' as const,
        firstReceiver: '12345',
        citizenLeg: { switchId: 'bench', legId: randomUUID() },
        agent: { agentId: 'A1', seatId: 'S1', legId: null },
        target: { desk: '110', number: '110', trunks: ['b'] },
        presentedCallerId: { kind: 'number' as const, national: '13800138000', type: 'mobile' as const },
        ticketId: 'GD-BENCH-1',
        stubDeferred: false,
        state: 'ringing' as const,
        trunkIndex: 0,
        targetLegId: randomUUID(),
        failure: null,
        endedBy: null,
        createdAt: new Date().toISOString(),
      };
      const before = { ...hub.fanout };
      const loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      for (let i = 0; i < message.events; i += 1) {
        const at = new Date().toISOString();
        await bus.publish({
          kind: 'transition',
          transfer: summarise({ ...base, version: i + 1, updatedAt: at }),
          record: {
            transferId: base.id,
            at,
            from: 'ringing',
            to: 'ringing',
            event: 'target-ringing',
            version: i + 1,
          },
        });
        await new Promise((resolve) => setTimeout(resolve, message.intervalMs));
      }
      // Let the last frames leave before the peak is read.
      await new Promise((resolve) => setTimeout(resolve, 500));
      clearInterval(sampler);
      const events = hub.fanout.events - before.events;
      const fanout = {
        events,
        meanMs: (hub.fanout.totalMs - before.totalMs) / Math.max(events, 1),
        maxMs: hub.fanout.maxMs,
        flushes: hub.fanout.flushes - before.flushes,
        flushMeanMs: (hub.fanout.flushTotalMs - before.flushTotalMs) / Math.max(hub.fanout.flushes - before.flushes, 1),
        flushMaxMs: hub.fanout.flushMaxMs,
      };
      loop.disable();
      const ms = (ns: number) => Math.round(ns / 1e5) / 10;
      const loopDelayMs = { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) };
      send({ type: 'burst-done', peak, published: message.events, fanout, loopDelayMs });
    }
  });
}

// ------------------------------------------------------------------ the clients (parent process)

function ask<T extends FromChild['type']>(
  child: ChildProcess,
  type: T,
  request?: ToChild,
): Promise<Extract<FromChild, { type: T }>> {
  return new Promise((resolve) => {
    const onMessage = (m: FromChild) => {
      if (m.type !== type) return;
      child.off('message', onMessage);
      resolve(m as Extract<FromChild, { type: T }>);
    };
    child.on('message', onMessage);
    if (request) child.send(request);
  });
}

async function bench(): Promise<void> {
  const clients = Number(args.clients);
  const events = Number(args.events);
  const intervalMs = Number(args['interval-ms']);
  const deadline = setTimeout(
    () => {
      console.error(`bench: stopped at the ${args['timeout-s']} s limit`);
      process.exit(2);
    },
    Number(args['timeout-s']) * 1000,
  );
  deadline.unref();

  const child = fork(
    fileURLToPath(import.meta.url),
    ['--serve', ...(args['redis-url'] ? ['--redis-url', args['redis-url']] : [])],
    {
      execArgv: [
        '--import',
        'tsx',
        '--expose-gc',
        ...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_PROF] : []),
      ],
      stdio: 'inherit',
    },
  );
  const { port, node, bare } = await ask(child, 'listening');
  const idle = await ask(child, 'memory', { type: 'memory' });

  const latencies: number[] = [];
  const received = new Array<number>(clients).fill(0);
  let dropped = 0;
  const sockets: WebSocket[] = [];
  const started = Date.now();
  for (let batch = 0; batch < clients; batch += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, clients - batch) }, (_, k) => {
        const index = batch + k;
        return new Promise<void>((resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/feed`, [
            'hotline-feed.v1',
            'bearer.bench-supervisor-key-0000',
          ]);
          sockets.push(ws);
          ws.on('error', reject);
          ws.on('close', (code) => {
            if (code !== 1000 && code !== 1005 && code !== 1001) dropped += 1;
          });
          ws.on('open', () => ws.send(JSON.stringify({ v: 1, type: 'subscribe' })));
          ws.on('message', (data) => {
            // The clients share one process here, so they read cheaply: the change's time is the last
            // "at" of a transfer frame (a real client parses the frame; it has a machine of its own).
            const text = data.toString();
            if (text.startsWith('{"v":1,"type":"snapshot"')) resolve();
            else if (text.startsWith('{"v":1,"type":"transfer"')) {
              const at = text.lastIndexOf('"at":"');
              latencies.push(Date.now() - Date.parse(text.slice(at + 6, at + 30)));
              received[index] = (received[index] ?? 0) + 1;
            }
          });
        });
      }),
    );
  }
  const connectSeconds = (Date.now() - started) / 1000;
  const connected = await ask(child, 'memory', { type: 'memory' });

  const burstStarted = Date.now();
  const done = await ask(child, 'burst-done', { type: 'burst', events, intervalMs });
  while (received.some((n) => n < events) && Date.now() - burstStarted < 20_000) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const after = await ask(child, 'memory', { type: 'memory' });
  latencies.sort((a, b) => a - b);
  const complete = received.filter((n) => n === events).length;

  console.log('feed benchmark');
  console.log(`  ${machine()}; the service runs node ${node}`);
  console.log(
    `  load        1-min load average ${loadavg()[0]?.toFixed(2)} at the end (other work on the machine skews the figures)`,
  );
  console.log(
    `  clients     ${clients} websocket supervisors on loopback, connected in ${connectSeconds.toFixed(1)} s`,
  );
  console.log(
    `  burst       ${done.published} events, one every ${intervalMs} ms → ${clients * events} frames`,
  );
  console.log(
    `  bus         ${args['redis-url'] ? 'Redis Stream (XADD → XREAD)' : 'in-process (one instance)'}`,
  );
  console.log(
    `  delivered   ${latencies.length} frames; ${complete}/${clients} clients got every event; ${dropped} dropped`,
  );
  console.log(
    `  latency     p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms, max ${latencies.at(-1)} ms (publish → client parsed; ms clock)`,
  );
  console.log(
    `  fan-out     service time to hand one event to every socket: mean ${done.fanout.meanMs.toFixed(1)} ms, max ${done.fanout.maxMs.toFixed(1)} ms (${done.fanout.events} events); to write what one turn of its event loop handed them: mean ${done.fanout.flushMeanMs.toFixed(1)} ms, max ${done.fanout.flushMaxMs.toFixed(1)} ms (${done.fanout.flushes} turns)`,
  );
  console.log(
    `  event loop  service loop delay during the burst (what a transfer's own work waits): p50 ${done.loopDelayMs.p50} ms, p99 ${done.loopDelayMs.p99} ms, max ${done.loopDelayMs.max} ms`,
  );
  console.log(`  memory      process before the service loads (node + tsx loader): RSS ${bare.rssMb} MB`);
  console.log(
    `              service RSS idle ${idle.memory.rssMb} MB, with clients ${connected.memory.rssMb} MB, peak in burst ${done.peak.rssMb} MB, after ${after.memory.rssMb} MB`,
  );
  console.log(
    `              service heap used (after a full GC, but the peak): idle ${idle.memory.heapUsedMb} MB, peak ${done.peak.heapUsedMb} MB, after ${after.memory.heapUsedMb} MB`,
  );
  console.log('  targets     p99 ≤ 50 ms, RSS < 150 MB (not asserted)');

  for (const ws of sockets) ws.terminate();
  child.send({ type: 'stop' } satisfies ToChild);
  await new Promise((resolve) => child.once('exit', resolve));
  clearTimeout(deadline);
}

if (args.serve) await serve();
else await bench();
