// The load generator of scripts/bench-transfers.ts, in a process of its own: its HTTP client work
// (building requests, parsing replies) would otherwise share the event loop of the service it
// measures. Send times use process.hrtime.bigint(), the machine's monotonic clock, which the
// service process reads too. Bounded: it sends the bodies it is given, at the rate it is given. It
// also holds the supervisors' wall connections, if asked: a wall is a browser elsewhere, not a part of
// the service's process.
import { Agent, request } from 'node:http';
import WebSocket from 'ws';
import { FEED_PATH, FEED_SUBPROTOCOL } from '../src/feed/protocol.js';

export interface LoadOrder {
  readonly port: number;
  readonly apiKey: string;
  readonly ratePerSecond: number;
  /** Supervisors watching the live feed (each a websocket subscribed to every desk), and their key. */
  readonly watchers: { readonly count: number; readonly apiKey: string };
  /** Sent first at the same rate, unmeasured: warms the JIT, the connection pool and Redis' scripts. */
  readonly warmUp: readonly Sent[];
  readonly bodies: readonly Sent[];
}

/** One request: its JSON body and its Idempotency-Key (by which the benchmark finds it in the server). */
export interface Sent {
  readonly body: string;
  readonly idempotencyKey: string;
}

/** Sent to the parent when the warm-up is over and the measured requests start. */
export interface LoadPhase {
  readonly measuring: true;
}

export interface LoadResult {
  /** Per body, in order: when it was sent (hrtime, ns, as text), the status and the response time. */
  readonly sent: readonly { readonly at: string; readonly status: number; readonly responseMs: number }[];
  readonly elapsedSeconds: number;
  /**
   * How late this process's own send timers woke, in ms, over the measured requests: it does almost
   * nothing between sends, so lateness here is the machine's (a process waiting for a core), not
   * the service's, and the same delays fall on the service and Redis.
   */
  readonly timerLateMs: readonly number[];
  /** Feed frames the watchers received while the measured requests were sent, all watchers together. */
  readonly watcherFrames: number;
  /** This process's CPU (user and system) over the measured requests, ms: its share of the machine. */
  readonly cpuMs: number;
}

process.once('message', (order: LoadOrder) => {
  void run(order).then(
    (result) => process.send?.(result, () => process.exit(0)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
});

async function run(order: LoadOrder): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  // A request that fails on the wire (a reset connection) is answered with status 0: counted as not
  // accepted, rather than ending a benchmark of minutes.
  const post = ({ body, idempotencyKey }: Sent): Promise<number> =>
    new Promise((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: order.port,
          method: 'POST',
          path: '/v1/transfers',
          agent,
          headers: {
            authorization: `Bearer ${order.apiKey}`,
            'content-type': 'application/json',
            'idempotency-key': idempotencyKey,
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', () => resolve(0));
      req.end(body);
    });

  const watchers = await Promise.all(Array.from({ length: order.watchers.count }, () => watch(order.port, order.watchers.apiKey)));
  let watcherFrames = 0;
  for (const ws of watchers) ws.on('message', () => (watcherFrames += 1));

  // The warm-up at the same rate, then the measured requests: the server meets the load it is
  // measured under with its code already optimised for it.
  await paced(order.warmUp, order.ratePerSecond, [], () => undefined);
  process.send?.({ measuring: true } satisfies LoadPhase);
  watcherFrames = 0;
  const sent: { at: string; status: number; responseMs: number }[] = [];
  const timerLateMs: number[] = [];
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  await paced(order.bodies, order.ratePerSecond, timerLateMs, (t0, reply) => {
    const slot = { at: String(t0), status: 0, responseMs: 0 };
    sent.push(slot);
    return reply.then((status) => {
      slot.status = status;
      slot.responseMs = Number(process.hrtime.bigint() - t0) / 1e6;
    });
  });
  const framesWhileMeasured = watcherFrames;
  const cpu = process.cpuUsage(cpuBefore);
  agent.destroy();
  for (const ws of watchers) ws.terminate();
  return { sent, elapsedSeconds: Number(process.hrtime.bigint() - started) / 1e9, timerLateMs, watcherFrames: framesWhileMeasured, cpuMs: (cpu.user + cpu.system) / 1000 };

  /** Sends each request at its time; resolves when every reply is in. */
  async function paced(
    requests: readonly Sent[],
    ratePerSecond: number,
    timerLateMs: number[],
    track: (t0: bigint, reply: Promise<number>) => unknown,
  ): Promise<void> {
    const inFlight: unknown[] = [];
    const start = process.hrtime.bigint();
    for (let i = 0; i < requests.length; i += 1) {
      const due = start + BigInt(Math.round((i * 1e9) / ratePerSecond));
      const waitMs = Number(due - process.hrtime.bigint()) / 1e6;
      if (waitMs > 1) await new Promise((r) => setTimeout(r, waitMs));
      const t0 = process.hrtime.bigint();
      // A timer fires on the next whole millisecond at best: up to 1 ms late is the timer, not the machine.
      if (waitMs > 1) timerLateMs.push(Math.max(0, Number(t0 - due) / 1e6));
      const reply = post(requests[i]!);
      inFlight.push(track(t0, reply) ?? reply);
    }
    await Promise.all(inFlight);
  }
}

/** A supervisor's wall: connected and subscribed to the live feed (its snapshot received). */
function watch(port: number, apiKey: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${FEED_PATH}`, [FEED_SUBPROTOCOL, `bearer.${apiKey}`]);
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => ws.send(JSON.stringify({ v: 1, type: 'subscribe' })));
    ws.on('message', (data: Buffer) => {
      if (data.includes('"type":"snapshot"')) resolve(ws);
    });
  });
}
