// compose(): the service as main.ts builds it, with a test peer in place of the configured switches.
// The benchmarks measure the service through it, so it must be the deployed service: routing policy,
// nuisance lookup and call records included.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { compose, DEFAULTS_PATH, type Composition } from '../../src/main.js';
import { transferBody } from '../support/harness.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
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
});
