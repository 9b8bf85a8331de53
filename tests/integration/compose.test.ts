// compose(): the service as main.ts builds it, with a test peer in place of the configured switches.
// The benchmarks measure the service through it, so it must be the deployed service: routing policy,
// nuisance lookup and call records included.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { compose, DEFAULTS_PATH, type Composition } from '../../src/main.js';
import { openFeed } from '../support/feed-client.js';
import { transferBody } from '../support/harness.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { burstThroughRestart } from '../support/restart-burst.js';
import { TestCallControl } from '../support/test-call-control.js';

describe.each(['memory', 'redis'] as const)('compose() on the %s store', (store) => {
  let redis: RedisServer | null = null;
  let composed: Composition;
  let AGENT: { authorization: string };
  let SUPERVISOR: { authorization: string };
  const callControl = new TestCallControl();

  beforeAll(async () => {
    redis = store === 'redis' ? await startRedis() : null;
    const config = loadConfig({ defaultsPath: DEFAULTS_PATH, env: redis ? { REDIS_URL: redis.url } : {} });
    const keyOf = (role: string) => ({
      authorization: `Bearer ${config.auth.keys.find((k) => k.role === role)?.key}`,
    });
    AGENT = keyOf('agent');
    SUPERVISOR = keyOf('supervisor');
    const logs = new Writable({ write: (_chunk, _encoding, done) => done() });
    composed = await compose(config, createLogger('info', logs), { switches: [callControl] });
    // Its Redis connections come up on their own; until then it is not ready and refuses transfers
    // (a loaded machine is slow to connect), as a load balancer would see on /health/ready.
    const deadline = Date.now() + 10_000;
    while ((await composed.app.inject({ method: 'GET', url: '/health/ready' })).statusCode !== 200) {
      if (Date.now() > deadline) throw new Error('the composed service did not become ready within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  afterAll(async () => {
    await composed.service.drain(1_000);
    await composed.close();
    await redis?.stop();
  });

  it('uses the given switch instead of the configured ones', () => {
    expect(composed.switches).toEqual([callControl]);
  });

  it('places a transfer with the routing decision and the caller counted by the nuisance lookup', async () => {
    const body = transferBody({ callerNumber: '13912345678' });
    const first = await composed.app.inject({
      method: 'POST',
      url: '/v1/transfers',
      headers: AGENT,
      payload: body,
    });
    expect(first.statusCode).toBe(202);
    const placed = callControl.commands.filter((c) => c.type === 'placeCall');
    expect(placed.map((c) => c.request.ticket.ticketId)).toContain(body.ticket.ticketId);

    const again = await composed.app.inject({
      method: 'POST',
      url: '/v1/transfers',
      headers: AGENT,
      payload: transferBody({ callerNumber: '13912345678' }),
    });
    const { id } = again.json<{ transfer: { id: string } }>().transfer;
    const view = await composed.app.inject({ url: `/v1/transfers/${id}`, headers: SUPERVISOR });
    const routing = view.json<{
      routing: { categoryCode: string; nuisance: { recentCalls: number } | null } | null;
    }>().routing;
    expect(routing?.categoryCode).toBe(body.ticket.categoryCode);
    expect(routing?.nuisance?.recentCalls).toBe(2);
  });

  it("puts a flagged caller's nuisance mark on the live feed, in a delta of its own before the far side rings", async () => {
    await composed.app.listen({ host: '127.0.0.1', port: 0 });
    const address = composed.app.server.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const watcher = await openFeed(base, { token: SUPERVISOR.authorization.replace('Bearer ', '') });
    try {
      watcher.subscribe();
      await watcher.next('snapshot');
      const callerNumber = store === 'redis' ? '13611136111' : '13622136222';
      const flagged = await composed.app.inject({
        method: 'POST', url: '/v1/nuisance/flags', headers: AGENT, payload: { callerNumber, kind: 'threatening' },
      });
      expect(flagged.statusCode).toBe(201);
      callControl.answers.set('sw110', 'ring-only');
      const res = await composed.app.inject({ method: 'POST', url: '/v1/transfers', headers: AGENT, payload: transferBody({ callerNumber }) });
      const { id } = res.json<{ transfer: { id: string } }>().transfer;
      const marked = await watcher.next('transfer', (m) => m.transfer.id === id && m.change.event === 'nuisance-checked');
      expect(marked.transfer).toMatchObject({ state: 'dialing', callerId: '136****' + callerNumber.slice(-4) });
      expect(marked.transfer.nuisance).toEqual({ flagged: 'threatening', recentCalls: 1, repeated: false });
      const ringing = await watcher.next('transfer', (m) => m.transfer.id === id && m.transfer.state === 'ringing');
      expect(ringing.transfer.nuisance?.flagged).toBe('threatening');
    } finally {
      callControl.answers.delete('sw110');
      await watcher.close();
    }
  });
});

describe('compose() on Redis, when Redis restarts during a burst of transfers', () => {
  let redis: RedisServer;
  let composed: Composition;
  const callControl = new TestCallControl();
  let headersOf: (role: string, extra?: Record<string, string>) => Record<string, string>;

  beforeAll(async () => {
    redis = await startRedis();
    const config = loadConfig({ defaultsPath: DEFAULTS_PATH, env: { REDIS_URL: redis.url } });
    headersOf = (role, extra = {}) => ({ authorization: `Bearer ${config.auth.keys.find((k) => k.role === role)?.key}`, ...extra });
    const logs = new Writable({ write: (_chunk, _encoding, done) => done() });
    composed = await compose(config, createLogger('info', logs), { switches: [callControl] });
    // Its Redis connections come up on their own; until then it is not ready and refuses transfers
    // (a loaded machine is slow to connect), as a load balancer would see on /health/ready.
    const deadline = Date.now() + 10_000;
    while ((await composed.app.inject({ method: 'GET', url: '/health/ready' })).statusCode !== 200) {
      if (Date.now() > deadline) throw new Error('the composed service did not become ready within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  afterAll(async () => {
    await composed.service.drain(1_000);
    await composed.close();
    await redis.stop();
  });

  it('stores and places every transfer once, and counts each caller once per stored transfer', async () => {
    const presses = Array.from({ length: 90 }, () => ({ body: transferBody({ callerNumber: '13700137000' }), key: randomUUID() }));
    const accepted = await burstThroughRestart(composed.app, headersOf('agent'), redis, presses, 30);
    const ids = accepted.map((a) => a.id);
    expect(new Set(ids).size).toBe(presses.length);
    const placed = callControl.commands.flatMap((c) => (c.type === 'placeCall' ? [c.request.transferId] : []));
    expect(placed.sort()).toEqual([...ids].sort());

    await expect.poll(() => composed.service.pendingWrites(), { timeout: 10_000 }).toEqual({ transfers: 0, stubs: 0 });
    const viewAll = () =>
      Promise.all(
        ids.map(async (id) => (await composed.app.inject({ url: `/v1/transfers/${id}`, headers: headersOf('supervisor') })).json<{
          state: string;
          routing: { nuisance: { recentCalls: number } | null };
        }>()),
      );
    // Calls whose events queued behind a lookup that met the restart settle a little later.
    await expect.poll(async () => (await viewAll()).map((v) => v.state), { timeout: 10_000 }).toEqual(ids.map(() => 'bridged'));
    const views = await viewAll();
    // A mark may be missing (its lookup met the restart), never counted twice: each is a different count.
    const counts = views.flatMap((v) => (v.routing.nuisance ? [v.routing.nuisance.recentCalls] : []));
    expect(counts.length).toBeGreaterThan(presses.length / 2);
    expect(new Set(counts).size).toBe(counts.length);
    const lookup = await composed.app.inject({ method: 'POST', url: '/v1/nuisance/lookup', headers: headersOf('agent'), payload: { callerNumber: '13700137000' } });
    const { recentCalls } = lookup.json<{ recentCalls: number }>();
    expect(recentCalls).toBeGreaterThanOrEqual(counts.length);
    expect(recentCalls).toBeLessThanOrEqual(presses.length);
    expect(Math.max(...counts)).toBeLessThanOrEqual(recentCalls);
  }, 60_000);
});
