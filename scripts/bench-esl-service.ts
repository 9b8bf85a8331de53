// Benchmark of the whole key-press path through the FreeSWITCH driver: POST /v1/transfers on a listening
// server → the transfer service as main.ts composes it, on a real Redis → the Event Socket driver → the
// originate command on the transcript peer's socket (the peer in its own thread). Prints transfers per second and p50/p99 of
//   key press → originate on the socket, and the driver's share of it (placeCall → on the socket).
// Bounded in count and time; never asserts a time.
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { Worker } from 'node:worker_threads';
import type { PlaceCallRequest } from '../src/ports.js';
import { transferBody } from '../tests/support/harness.js';
import { startRedis } from '../tests/support/redis-server.js';
import { machine, percentile } from './bench-report.js';
import { composedService } from './composed-service.js';
import { eslBenchDriver } from './esl-bench-driver.js';

const RATE = Number(process.env.BENCH_RATE ?? 200);
const COUNT = Math.min(Number(process.env.BENCH_COUNT ?? 1000), 10_000);
const WARM_UP = 100;

const peerThread = new Worker(new URL('./esl-bench-peer-worker.ts', import.meta.url));
const onSocket = new Map<string, bigint>(); // ticket id → when the originate was complete on the peer's socket
const peerPort = await new Promise<number>((resolve, reject) => {
  peerThread.once('error', reject);
  peerThread.on('message', (m: { type: string; port?: number; ticket?: string; at?: bigint }) => {
    if (m.type === 'ready' && m.port) resolve(m.port);
    if (m.type === 'originate' && m.ticket && m.at !== undefined) onSocket.set(m.ticket, m.at);
  });
});

const redis = await startRedis();
const driver = eslBenchDriver(peerPort, 'fs-bench');
// The driver's share starts when the service hands it the call.
const placeCallAt = new Map<string, bigint>(); // ticket id → placeCall() entered
const placeCall = driver.placeCall.bind(driver);
driver.placeCall = (req: PlaceCallRequest) => {
  placeCallAt.set(req.ticket.ticketId, process.hrtime.bigint());
  return placeCall(req);
};
// The service as main.ts composes it, with this driver as its switch.
const { composed, port, agentKey } = await composedService(redis.url, [driver]);
driver.start();
await driver.ready();
await composed.app.listen({ host: '127.0.0.1', port });
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function press(): { ticketId: string; sent: Promise<number> } {
  const citizen = randomUUID();
  const agentLeg = randomUUID();
  peerThread.postMessage({ type: 'call', citizen, agent: agentLeg });
  const body = transferBody({ citizenLeg: { switchId: 'fs-bench', legId: citizen }, agent: { agentId: 'A1001', seatId: 'S07', legId: agentLeg } });
  const sent = new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/transfers',
        agent,
        headers: { authorization: `Bearer ${agentKey}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
  return { ticketId: body.ticket.ticketId, sent };
}

await Promise.all(Array.from({ length: WARM_UP }, () => press().sent));
const pressedAt = new Map<string, bigint>();
const statuses: Promise<number>[] = [];
const started = process.hrtime.bigint();
for (let i = 0; i < COUNT; i += 1) {
  const due = started + BigInt(Math.round((i * 1e9) / RATE));
  const waitMs = Number(due - process.hrtime.bigint()) / 1e6;
  if (waitMs > 1) await new Promise((r) => setTimeout(r, waitMs));
  const t0 = process.hrtime.bigint();
  const { ticketId, sent } = press();
  pressedAt.set(ticketId, t0);
  statuses.push(sent);
}
const accepted = (await Promise.all(statuses)).filter((s) => s === 202).length;
const deadline = Date.now() + 15_000;
while ([...pressedAt.keys()].some((t) => !onSocket.has(t)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;

const total: number[] = [];
const driverShare: number[] = [];
for (const [ticketId, t0] of pressedAt) {
  const at = onSocket.get(ticketId);
  const entered = placeCallAt.get(ticketId);
  if (at === undefined || entered === undefined) continue;
  total.push(Number(at - t0) / 1e6);
  driverShare.push(Number(at - entered) / 1e6);
}
console.log('== the key press through the service and the FreeSWITCH driver (transcript peer, not a live FreeSWITCH), on Redis');
console.log(machine());
console.log(`offered: ${WARM_UP} warm-up + ${COUNT} measured key presses at ${RATE}/s over ${elapsedS.toFixed(2)} s; ${accepted} accepted (202), ${total.length} originates seen on the socket`);
console.log(`key press → originate on the socket: p50 ${percentile(total, 50).toFixed(2)} ms, p99 ${percentile(total, 99).toFixed(2)} ms`);
console.log(`  of which the driver (placeCall → on the socket): p50 ${percentile(driverShare, 50).toFixed(2)} ms, p99 ${percentile(driverShare, 99).toFixed(2)} ms`);

agent.destroy();
await composed.service.drain(5_000);
await composed.close(); // closes the driver too
await redis.stop();
peerThread.postMessage({ type: 'close' });
await new Promise((resolve) => peerThread.once('exit', resolve));
