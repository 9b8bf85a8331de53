// Redis failing under the service: a restart mid-burst loses and duplicates nothing; an emergency
// transfer goes out with Redis down, its stub kept and stored once Redis is back.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { redisKeys } from '../../src/adapters/redis/keys.js';
import { connectRedis } from '../../src/adapters/redis/redis-connection.js';
import { RedisTicketStore, RedisTransferStore } from '../../src/adapters/redis/redis-stores.js';
import { auth, startHarness, transferBody, type Harness } from '../support/harness.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { burstThroughRestart } from '../support/restart-burst.js';

let redis: RedisServer;
let h: Harness;
beforeEach(async () => {
  redis = await startRedis();
  h = await startHarness({ redisUrl: redis.url, redisCommandTimeoutMs: 300 });
});
afterEach(async () => {
  await h.close();
  await redis.stop();
});

/** Reads what Redis itself holds, through a fresh connection. */
async function inRedis<T>(read: (stores: { tickets: RedisTicketStore; transfers: RedisTransferStore }) => Promise<T>): Promise<T> {
  const client = connectRedis(redis.url, { commandTimeoutMs: 1000, connectTimeoutMs: 1000 });
  await new Promise<void>((resolve) => client.once('ready', () => resolve()));
  try {
    const keys = redisKeys(h.namespace!);
    return await read({
      tickets: new RedisTicketStore(client, keys),
      transfers: new RedisTransferStore(client, keys, {
        transferTtlSeconds: 60,
        idempotencyTtlSeconds: 60,
        feedLog: { key: keys.feedLog, maxLength: 10_000 },
      }),
    });
  } finally {
    await client.quit();
  }
}

describe('when Redis restarts during a burst of transfers', () => {
  it('every transfer is stored once and placed once: nothing lost, nothing duplicated', async () => {
    const presses = Array.from({ length: 120 }, () => ({ body: transferBody(), key: randomUUID() }));
    const accepted = await burstThroughRestart(h.app, auth('agent'), redis, presses, 40);

    const ids = accepted.map((a) => a.id);
    expect(new Set(ids).size).toBe(presses.length);
    const placed = h.callControl.commands.flatMap((c) => (c.type === 'placeCall' ? [c.request.transferId] : []));
    expect(placed.sort()).toEqual([...ids].sort());

    await expect.poll(() => h.service.pendingWrites(), { timeout: 10_000 }).toEqual({ transfers: 0, stubs: 0 });
    await expect
      .poll(async () => inRedis(async ({ transfers }) => (await Promise.all(ids.map((id) => transfers.get(id)))).map((t) => t?.state)), {
        timeout: 10_000,
      })
      .toEqual(ids.map(() => 'bridged'));
    const stubs = await inRedis(({ tickets }) => Promise.all(presses.map((p) => tickets.get(p.body.ticket.ticketId))));
    expect(stubs.every((s) => s !== null)).toBe(true);
  }, 60_000);
});

describe('when Redis is down', () => {
  it('an emergency transfer still goes out, its stub is served from memory, and both are stored when Redis is back', async () => {
    await redis.restart(0); // make sure the harness reconnects cleanly first
    await expect.poll(async () => (await h.app.inject({ method: 'GET', url: '/health/ready' })).statusCode, { timeout: 5000 }).toBe(200);
    const down = redis.restart(1500);
    await new Promise((r) => setTimeout(r, 100));

    const normal = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody() });
    expect(normal.statusCode).toBe(503);
    expect(normal.json().error.code).toBe('store_unavailable');

    const body = transferBody({ priority: 'emergency', ticket: { ...transferBody().ticket, urgency: 'emergency' } });
    const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: body });
    expect(res.statusCode).toBe(202);
    const { transfer } = res.json();
    expect(transfer.stubDeferred).toBe(true);
    expect(h.callControl.commandsFor(transfer.id)[0]).toMatchObject({ type: 'placeCall' });
    const ready = await h.app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().pendingWrites.stubs).toBe(1);

    const seat = await h.app.inject({ method: 'GET', url: `/v1/tickets/${body.ticket.ticketId}`, headers: auth('seat') });
    expect(seat.statusCode).toBe(200);
    expect(seat.json().callerNumber).toBe('13800138000');

    await down;
    await expect.poll(() => h.service.pendingWrites(), { timeout: 10_000 }).toEqual({ transfers: 0, stubs: 0 });
    const stored = await inRedis(async ({ tickets, transfers }) => ({
      stub: await tickets.get(body.ticket.ticketId),
      transfer: await transfers.get(transfer.id),
      audit: (await transfers.auditTrail(transfer.id)).map((r) => r.event),
    }));
    expect(stored.stub?.ticketId).toBe(body.ticket.ticketId);
    expect(stored.transfer?.state).toBe('bridged');
    expect(stored.audit.slice(0, 3)).toEqual(['created', 'stub-stored', 'dial-started']);
    expect(h.logs.some((l) => l.msg === 'deferred ticket stub stored')).toBe(true);
  }, 30_000);
});

describe('when Redis is down, with instances sharing Redis (leases)', () => {
  it('an emergency transfer made meanwhile is driven to the end: its lease is taken before it is first stored', async () => {
    await h.close();
    h = await startHarness({
      redisUrl: redis.url,
      redisCommandTimeoutMs: 300,
      lease: { holderId: 'svc-a', ttlMs: 600, takeoverIntervalMs: 300 },
    });
    h.callControl.answers.set('sw110', 'ring-only');
    // Down for longer than the lease lives: a lease this instance held would lapse meanwhile.
    const down = redis.restart(1500);
    await new Promise((r) => setTimeout(r, 100));
    const body = transferBody({ priority: 'emergency', ticket: { ...transferBody().ticket, urgency: 'emergency' } });
    const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: body });
    expect(res.statusCode).toBe(202);
    const { transfer } = res.json();
    await expect.poll(async () => (await h.service.get(transfer.id)).state).toBe('ringing');

    await down;
    await expect.poll(() => h.service.pendingWrites(), { timeout: 10_000 }).toEqual({ transfers: 0, stubs: 0 });
    const keys = redisKeys(h.namespace!);
    const client = connectRedis(redis.url, { commandTimeoutMs: 1000, connectTimeoutMs: 1000 });
    await new Promise<void>((resolve) => client.once('ready', () => resolve()));
    expect(await client.get(`${keys.leasePrefix}${transfer.id}`)).toBe('svc-a');
    // Past a few renewal rounds, the target answers: this instance still drives the call and bridges it.
    await new Promise((r) => setTimeout(r, 1000));
    const placed = h.callControl.commandsFor(transfer.id)[0];
    if (placed?.type !== 'placeCall') throw new Error('no call was placed');
    h.callControl.emit({ type: 'target-answered', transferId: transfer.id, legId: placed.request.legId });
    await expect.poll(async () => (await h.service.get(transfer.id)).state).toBe('bridged');
    expect(h.callControl.commandsFor(transfer.id).map((c) => c.type)).toContain('bridgeToTarget');
    expect(h.logs.some((l) => String(l.msg).startsWith('lease lost'))).toBe(false);
    await client.quit();
  }, 30_000);
});
