// Benchmark: a burst of transfers through the HTTP API (a real listening server, keep-alive client)
// on a real Redis, to the CallControl test peer. Prints transfers per second and p50/p99 latency from
// request to the place-call command, and what each transfer costs the service. The load generator
// runs in a process of its own (scripts/transfer-load-generator.ts). Bounded: a fixed count at a
// fixed rate. Never asserts.
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { PerformanceObserver, constants as perfConstants, performance, type PerformanceEntry } from 'node:perf_hooks';
import { startHarness, transferBody, KEYS } from '../tests/support/harness.js';
import { startRedis } from '../tests/support/redis-server.js';
import { machine, percentile } from './bench-report.js';
import type { LoadOrder, LoadResult } from './transfer-load-generator.js';

const RATE_PER_SECOND = Number(process.env.BENCH_RATE ?? 200);
const COUNT = Number(process.env.BENCH_COUNT ?? 2000);

const redis = await startRedis();
// As in production: info-level logs, one line per transition (to a sink that drops them), and a
// lease per transfer with the default TTL.
const h = await startHarness({
  redisUrl: redis.url,
  logs: 'discard',
  feed: { statsIntervalMs: 1000 },
  lease: { holderId: 'bench', ttlMs: 10_000, takeoverIntervalMs: 5_000 },
});
await h.app.listen({ host: '127.0.0.1', port: 0 });
const address = h.app.server.address();
if (typeof address !== 'object' || address === null) throw new Error('no address');

const bodies = Array.from({ length: COUNT }, () => transferBody());
const order: LoadOrder = {
  port: address.port,
  apiKey: KEYS.agent,
  ratePerSecond: RATE_PER_SECOND,
  warmUp: Array.from({ length: 200 }, () => JSON.stringify(transferBody())),
  bodies: bodies.map((body) => JSON.stringify(body)),
};
const generator = fork(join(import.meta.dirname, 'transfer-load-generator.ts'), {
  execArgv: ['--import', 'tsx'],
  stdio: 'inherit',
});
// Collector pauses stop the event loop: they are what the tail of the latency is made of.
const pauses: { young: boolean; ms: number }[] = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    pauses.push({ young: kind === perfConstants.NODE_PERFORMANCE_GC_MINOR, ms: entry.duration });
  }
});
const commandsBefore = h.callControl.commands.length;
const cpuBefore = process.cpuUsage();
const loopBefore = performance.eventLoopUtilization();
const result = await new Promise<LoadResult>((resolve, reject) => {
  generator.once('message', (message) => resolve(message as LoadResult));
  generator.once('exit', (code) => reject(new Error(`the load generator exited with ${code}`)));
  gcObserver.observe({ entryTypes: ['gc'] });
  generator.send(order);
});
gcObserver.disconnect();
const cpu = process.cpuUsage(cpuBefore);
const loop = performance.eventLoopUtilization(loopBefore);

// The warm-up's transfers are placed too; only the measured bodies' tickets are looked up.
const placedAt = new Map<string, bigint>();
for (const command of h.callControl.commands.slice(commandsBefore)) {
  if (command.type === 'placeCall') placedAt.set(command.request.ticket.ticketId, command.at);
}
const toPlaceCallMs: number[] = [];
const responseMs: number[] = [];
let refused = 0;
result.sent.forEach((sent, i) => {
  if (sent.status !== 202) refused += 1;
  responseMs.push(sent.responseMs);
  const at = placedAt.get(bodies[i]!.ticket.ticketId);
  if (at !== undefined) toPlaceCallMs.push(Number(at - BigInt(sent.at)) / 1e6);
});

const ms = (values: number[], p: number) => percentile(values, p).toFixed(2);
console.log('== transfers through the HTTP API to the CallControl test peer, on Redis');
console.log(machine());
console.log(`offered: ${COUNT} transfers at ${RATE_PER_SECOND}/s; completed in ${result.elapsedSeconds.toFixed(2)} s = ${(COUNT / result.elapsedSeconds).toFixed(0)} transfers/s; ${refused} not accepted`);
console.log(`request → place-call command: p50 ${ms(toPlaceCallMs, 50)} ms, p90 ${ms(toPlaceCallMs, 90)} ms, p99 ${ms(toPlaceCallMs, 99)} ms, max ${ms(toPlaceCallMs, 100)} ms (n=${toPlaceCallMs.length})`);
console.log(`request → 202 response:       p50 ${ms(responseMs, 50)} ms, p99 ${ms(responseMs, 99)} ms`);
console.log(`service cost per transfer (request, switch events to bridged, feed): CPU ${((cpu.user + cpu.system) / 1000 / COUNT).toFixed(2)} ms; event loop busy ${(loop.utilization * 100).toFixed(0)}% of the run`);
const young = pauses.filter((p) => p.young).map((p) => p.ms);
const full = pauses.filter((p) => !p.young).map((p) => p.ms);
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
console.log(`collector pauses: ${young.length} young (${sum(young).toFixed(0)} ms in all, longest ${Math.max(0, ...young).toFixed(1)} ms), ${full.length} full (${sum(full).toFixed(0)} ms, longest ${Math.max(0, ...full).toFixed(1)} ms)`);
console.log(`memory: rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB (service and Redis client; the load generator is another process)`);

await h.close();
await redis.stop();
