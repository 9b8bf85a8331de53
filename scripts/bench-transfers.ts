// Benchmark: a burst of transfers through the HTTP API (a real listening server, keep-alive client)
// on a real Redis, to the CallControl test peer. Prints transfers per second and p50/p99 latency from
// request to the place-call command. Bounded: a fixed count at a fixed rate. Never asserts.
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { startHarness, transferBody, KEYS } from '../tests/support/harness.js';
import { startRedis } from '../tests/support/redis-server.js';
import { machine, percentile } from './bench-report.js';

const RATE_PER_SECOND = Number(process.env.BENCH_RATE ?? 200);
const COUNT = Number(process.env.BENCH_COUNT ?? 2000);

const redis = await startRedis();
// Info-level logs, one line per transition as in production, written to a sink that drops them.
const h = await startHarness({ redisUrl: redis.url, logs: 'discard', feed: { statsIntervalMs: 1000 } });
await h.app.listen({ host: '127.0.0.1', port: 0 });
const address = h.app.server.address();
if (typeof address !== 'object' || address === null) throw new Error('no address');
const port = address.port;
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function post(body: string): Promise<{ status: number; id: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/transfers',
        agent,
        headers: {
          authorization: `Bearer ${KEYS.agent}`,
          'content-type': 'application/json',
          'idempotency-key': randomUUID(),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, id: (JSON.parse(text) as { transfer?: { id: string } }).transfer?.id ?? '' }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

// Warm up the JIT, the connection pool and Redis' scripts.
await Promise.all(Array.from({ length: 50 }, () => post(JSON.stringify(transferBody()))));

const sentAt = new Map<string, bigint>();
const responseMs: number[] = [];
const toPlaceCallMs: number[] = [];
const bodies = Array.from({ length: COUNT }, () => transferBody());
const commandsBefore = h.callControl.commands.length;
const started = process.hrtime.bigint();
const inFlight: Promise<void>[] = [];
for (let i = 0; i < COUNT; i += 1) {
  const due = started + BigInt(Math.round((i * 1e9) / RATE_PER_SECOND));
  const waitMs = Number(due - process.hrtime.bigint()) / 1e6;
  if (waitMs > 1) await new Promise((r) => setTimeout(r, waitMs));
  const body = bodies[i]!;
  const t0 = process.hrtime.bigint();
  sentAt.set(body.ticket.ticketId, t0);
  inFlight.push(
    post(JSON.stringify(body)).then((res) => {
      if (res.status !== 202) throw new Error(`status ${res.status}`);
      responseMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }),
  );
}
await Promise.all(inFlight);
const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
for (const command of h.callControl.commands.slice(commandsBefore)) {
  if (command.type !== 'placeCall') continue;
  const t0 = sentAt.get(command.request.ticket.ticketId);
  if (t0 !== undefined) toPlaceCallMs.push(Number(command.at - t0) / 1e6);
}

console.log('== transfers through the HTTP API to the CallControl test peer, on Redis');
console.log(machine());
console.log(`offered: ${COUNT} transfers at ${RATE_PER_SECOND}/s; completed in ${elapsedS.toFixed(2)} s = ${(COUNT / elapsedS).toFixed(0)} transfers/s`);
console.log(`request → place-call command: p50 ${percentile(toPlaceCallMs, 50).toFixed(2)} ms, p99 ${percentile(toPlaceCallMs, 99).toFixed(2)} ms (n=${toPlaceCallMs.length})`);
console.log(`request → 202 response:       p50 ${percentile(responseMs, 50).toFixed(2)} ms, p99 ${percentile(responseMs, 99).toFixed(2)} ms`);
console.log(`memory: rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB (service, Redis client and load generator in one process)`);

agent.destroy();
await h.close();
await redis.stop();
