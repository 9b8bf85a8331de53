// Benchmark of the FreeSWITCH driver against the transcript peer on loopback: a burst of blind
// transfers offered at a fixed rate (default 200/s). Prints transfers per second and p50/p99 of
//   placeCall() → the originate command complete on the peer's socket (the driver's share of the
//                 key-press-to-signalling path: building, checking and writing the command), and
//   placeCall() → bridged (originate, recorded answer events, uuid_bridge, CHANNEL_BRIDGE).
// Bounded in count and time; never asserts a time. Usage:
//   node --import tsx scripts/bench-esl.ts [--count 1000] [--rate 200] [--max-seconds 30]
import { randomUUID } from 'node:crypto';
import { cpus, loadavg, totalmem, type as osType, release } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { CallControlEvent } from '../src/ports.js';
import { eslBenchDriver } from './esl-bench-driver.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '200' },
    'max-seconds': { type: 'string', default: '30' },
    warmup: { type: 'string', default: '100' },
  },
});
const count = Math.min(Math.max(Number(values.count), 1), 20_000);
const rate = Math.min(Math.max(Number(values.rate), 1), 5_000);
const maxSeconds = Math.min(Math.max(Number(values['max-seconds']), 1), 300);
const warmup = Math.min(Math.max(Number(values.warmup), 0), 1_000);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
const ms = (ns: bigint) => Number(ns) / 1e6;
const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');

async function main(): Promise<void> {
  const peerThread = new Worker(new URL('./esl-bench-peer-worker.ts', import.meta.url));
  const peerPort = await new Promise<number>((resolve, reject) => {
    peerThread.once('error', reject);
    peerThread.on('message', (m: { type: string; port?: number }) => {
      if (m.type === 'ready' && m.port) resolve(m.port);
    });
  });
  const driver = eslBenchDriver(peerPort, 'bench');
  driver.start();
  await driver.ready();

  interface Run {
    readonly measured: boolean;
    readonly citizen: string;
    readonly agent: string;
    readonly transferId: string;
    readonly legId: string;
    start: bigint;
    onSocket: bigint | null;
    bridged: bigint | null;
  }
  const runs = new Map<string, Run>(); // by transferId
  const byLeg = new Map<string, Run>();
  peerThread.on('message', (m: { type: string; leg?: string; at?: bigint }) => {
    if (m.type !== 'originate' || !m.leg || m.at === undefined) return;
    const run = byLeg.get(m.leg);
    if (run && run.onSocket === null) run.onSocket = m.at;
  });
  let done = 0;
  let failed = 0;
  const failures = new Map<string, number>();
  const noteFailure = (why: string) => failures.set(why, (failures.get(why) ?? 0) + 1);
  const total = warmup + count;
  let resolveAll!: () => void;
  const allDone = new Promise<void>((resolve) => (resolveAll = resolve));
  const finish = () => {
    done += 1;
    if (done === total) resolveAll();
  };
  driver.onEvent((event: CallControlEvent) => {
    const run = runs.get(event.transferId);
    if (!run) return;
    if (event.type === 'target-answered') {
      driver.bridgeToTarget({ transferId: run.transferId, citizenLegId: run.citizen, targetLegId: run.legId }).catch((err: unknown) => {
        failed += 1;
        noteFailure(`bridgeToTarget: ${(err as Error).message}`);
        finish();
      });
    } else if (event.type === 'bridged') {
      run.bridged = process.hrtime.bigint();
      driver.releaseAgent({ transferId: run.transferId, agentLegId: run.agent }).catch(() => undefined);
      finish();
    } else if (event.type === 'target-failed') {
      failed += 1;
      noteFailure(`target-failed: ${event.cause}`);
      finish();
    }
  });

  const launch = (i: number) => {
    const citizen = randomUUID();
    const agent = randomUUID();
    peerThread.postMessage({ type: 'call', citizen, agent });
    const run: Run = { measured: i >= warmup, citizen, agent, transferId: randomUUID(), legId: randomUUID(), start: 0n, onSocket: null, bridged: null };
    runs.set(run.transferId, run);
    byLeg.set(run.legId, run);
    run.start = process.hrtime.bigint();
    driver
      .placeCall({
        transferId: run.transferId,
        legId: run.legId,
        citizenLegId: citizen,
        agentLegId: agent,
        mode: 'blind',
        priority: i % 10 === 0 ? 'emergency' : 'normal',
        sourceDesk: '12345',
        target: { desk: '110', number: '110', trunk: 'sw110' },
        callerId: { kind: 'number', national: '13800138000', type: 'mobile' },
        ticket: { ticketId: `T-${i}`, stubUrl: `https://hotline.example.cn/v1/tickets/T-${i}` },
        answerTimeoutSeconds: 20,
      })
      .catch((err: unknown) => {
        failed += 1;
        noteFailure(`placeCall: ${(err as Error).message}`);
        finish();
      });
  };

  const started = process.hrtime.bigint();
  const eluStart = performance.eventLoopUtilization();
  let launched = 0;
  const pacer = setInterval(() => {
    const due = Math.min(total, Math.floor((ms(process.hrtime.bigint() - started) / 1000) * rate) + 1);
    while (launched < due) launch(launched++);
    if (launched >= total) clearInterval(pacer);
  }, 1);
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), maxSeconds * 1000).unref());
  const outcome = await Promise.race([allDone.then(() => 'done' as const), timeout]);
  clearInterval(pacer);
  const elapsedS = ms(process.hrtime.bigint() - started) / 1000;
  const elu = performance.eventLoopUtilization(eluStart);

  const measured = [...runs.values()].filter((r) => r.measured);
  const firstMeasured = measured[0]?.start ?? started;
  const lastBridged = measured.reduce((m, r) => (r.bridged !== null && r.bridged > m ? r.bridged : m), firstMeasured);
  const measuredS = ms(lastBridged - firstMeasured) / 1000;
  const toSocket = measured.filter((r) => r.onSocket !== null).map((r) => ms(r.onSocket! - r.start)).sort((a, b) => a - b);
  const toBridge = measured.filter((r) => r.bridged !== null).map((r) => ms(r.bridged! - r.start)).sort((a, b) => a - b);
  const cpu = cpus();
  console.log('FreeSWITCH ESL driver benchmark (transcript peer in its own thread on 127.0.0.1, not a live FreeSWITCH)');
  console.log(`machine: ${cpu.length} x ${cpu[0]?.model ?? 'unknown cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ${osType()} ${release()}, node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`offered: ${warmup} warm-up (not counted) + ${count} measured transfers at ${rate}/s; ${outcome === 'timeout' ? `STOPPED at the ${maxSeconds} s limit` : 'all settled'} in ${elapsedS.toFixed(2)} s`);
  console.log(`measured: bridged ${toBridge.length}, failed ${failed} (all runs), ${measuredS.toFixed(2)} s, throughput ${(toBridge.length / measuredS).toFixed(1)} transfers/s`);
  if (failures.size > 0) console.log(`failures: ${[...failures].map(([why, n]) => `${n} × ${why}`).join('; ')}`);
  console.log(`placeCall → originate on the socket (ms): p50 ${fmt(percentile(toSocket, 50))}  p99 ${fmt(percentile(toSocket, 99))}  max ${fmt(toSocket.at(-1) ?? Number.NaN)}  (n=${toSocket.length})`);
  console.log(`placeCall → bridged (ms):                 p50 ${fmt(percentile(toBridge, 50))}  p99 ${fmt(percentile(toBridge, 99))}  max ${fmt(toBridge.at(-1) ?? Number.NaN)}  (n=${toBridge.length})`);
  console.log(
    `driver thread busy: ${(elu.utilization * 100).toFixed(1)}% of ${elapsedS.toFixed(2)} s = ${(elu.active / (warmup + count)).toFixed(3)} ms of event-loop time per transfer (peer thread excluded)`,
  );
  await driver.close();
  peerThread.postMessage({ type: 'close' });
  await new Promise((resolve) => peerThread.once('exit', resolve));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
