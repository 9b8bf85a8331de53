// INVITEs per second through the SIP edge's B2BUA logic (real drachtio-srf, DrachtioCallControl, the
// domain state machine via the test service) against the drachtio test peer on loopback, and the time
// the service adds: citizen INVITE delivered → INVITE to 110 out, and 110's 200 in → 200 to the
// citizen out. Bounded by call count and wall time; prints the machine. Never asserts a time.
//   npm exec -- tsx scripts/bench-sip.ts [calls=400] [concurrency=20] [maxSeconds=30]
import { cpus, freemem, platform, release, totalmem } from 'node:os';
import { pathToFileURL } from 'node:url';
import { startHarness } from '../tests/support/sip-edge-harness.js';

const calls = Number(process.argv[2] ?? 400);
const concurrency = Number(process.argv[3] ?? 20);
const maxSeconds = Number(process.argv[4] ?? 30);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}
const ms = (n: number) => `${n.toFixed(2)} ms`;

interface Phase {
  completed: number;
  failed: number;
  launched: number;
  elapsed: number;
  inviteOut: number[];
  answerOut: number[];
}

async function phase(calls: number, concurrency: number): Promise<Phase> {
  const h = await startHarness({ peer: { answerDelayMs: 0 } });
  h.edge.onStatus(() => undefined);
  const started = performance.now();
  const deadline = started + maxSeconds * 1000;
  let launched = 0;
  let completed = 0;
  let failed = 0;
  const worker = async () => {
    while (launched < calls && performance.now() < deadline) {
      launched += 1;
      const call = h.peer.citizenInvite();
      try {
        const status = await call.final(10_000);
        if (status !== 200) failed += 1;
        else {
          call.bye();
          completed += 1;
        }
      } catch {
        failed += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, 200));

  // Pair each citizen INVITE with the INVITE the edge sent to 110 (same ticket id), and 110's 200 with
  // the 200 the edge sent to the citizen (same citizen Call-ID / B-leg Call-ID).
  const inviteOut: number[] = [];
  const answerOut: number[] = [];
  const byTicket = new Map<string, number>();
  for (const r of h.service.requests) {
    const callId = r.input.citizenLeg.legId.split(';from-tag=')[0] ?? '';
    byTicket.set(r.input.ticket.ticketId, h.peer.sip.find((s) => s.by === 'network' && s.text.startsWith('INVITE ') && s.text.includes(`Call-ID: ${callId}\r\n`))?.at ?? Number.NaN);
  }
  const callIdOf = (t: string) => /^Call-ID: (.*)\r$/m.exec(t)?.[1] ?? '';
  const bLegToTicket = new Map<string, string>();
  for (const s of h.peer.sip) {
    if (s.by !== 'app' || !s.text.startsWith('INVITE sip:110@')) continue;
    const ticket = /^X-Ticket-Id: (.*)\r$/m.exec(s.text)?.[1] ?? '';
    bLegToTicket.set(callIdOf(s.text), ticket);
    const t0 = byTicket.get(ticket);
    if (t0 !== undefined && !Number.isNaN(t0)) inviteOut.push(s.at - t0);
  }
  const okIn = new Map<string, number>();
  for (const s of h.peer.sip) {
    if (s.by === 'network' && s.partyPort === 5090 && s.text.startsWith('SIP/2.0 200') && s.text.includes(' INVITE\r\n')) okIn.set(callIdOf(s.text), s.at);
  }
  const citizenOf = new Map<string, string>();
  for (const r of h.service.requests) citizenOf.set(r.input.ticket.ticketId, r.input.citizenLeg.legId.split(';from-tag=')[0] ?? '');
  const okOutByCitizen = new Map<string, number>();
  for (const s of h.peer.sip) {
    if (s.by === 'app' && s.partyPort === 5080 && s.text.startsWith('SIP/2.0 200') && s.text.includes('CSeq: 1 INVITE')) okOutByCitizen.set(callIdOf(s.text), s.at);
  }
  for (const [bLeg, at] of okIn) {
    const citizen = citizenOf.get(bLegToTicket.get(bLeg) ?? '');
    const out = citizen === undefined ? undefined : okOutByCitizen.get(citizen);
    if (out !== undefined) answerOut.push(out - at);
  }
  inviteOut.sort((a, b) => a - b);
  answerOut.sort((a, b) => a - b);
  await h.stop();
  return { completed, failed, launched, elapsed, inviteOut, answerOut };
}

export interface SipBenchResult {
  readonly sequential: Phase;
  readonly parallel: Phase;
}

/** Runs the two phases and prints them with the machine; `npm run bench` can import and call this. */
export async function benchSip(opts: { calls?: number; concurrency?: number } = {}): Promise<SipBenchResult> {
  const n = opts.calls ?? calls;
  const c = opts.concurrency ?? concurrency;
  await phase(20, 1); // warm-up (JIT, srf's first dialogs); not reported
  // Latency one call at a time (nothing queued behind it), then throughput with calls in parallel.
  const latency = await phase(Math.max(1, Math.min(100, Math.floor(n / 4))), 1);
  const load = await phase(n, c);
  const cpu = cpus();
  const report = (name: string, p: Phase) => {
    console.log(`${name}: ${p.completed} completed, ${p.failed} failed, ${p.launched} launched; ${(p.completed / p.elapsed).toFixed(1)} calls/s over ${p.elapsed.toFixed(2)} s`);
    console.log(`  service-added, citizen INVITE in → INVITE to 110 out: p50 ${ms(percentile(p.inviteOut, 50))}, p99 ${ms(percentile(p.inviteOut, 99))} (n=${p.inviteOut.length})`);
    console.log(`  service-added, 110's 200 in → 200 to citizen out:    p50 ${ms(percentile(p.answerOut, 50))}, p99 ${ms(percentile(p.answerOut, 99))} (n=${p.answerOut.length})`);
  };
  console.log('bench-sip: trunk B2BUA through drachtio-srf against the drachtio test peer (loopback)');
  console.log(`machine: ${cpu[0]?.model ?? 'unknown cpu'} x${cpu.length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB (${(freemem() / 2 ** 30).toFixed(1)} free), ${platform()} ${release()}, node ${process.version}`);
  console.log(`each call: INVITE → 180 → 200 → ACK → BYE; cap ${maxSeconds} s per phase`);
  report('sequential (concurrency 1)', latency);
  report(`parallel (concurrency ${c})`, load);
  console.log('note: both figures include the test peer itself (same process, same event loop), so they are an upper bound.');
  return { sequential: latency, parallel: load };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchSip().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
