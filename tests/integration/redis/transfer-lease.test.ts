import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisTransferLease } from '../../../src/adapters/redis/transfer-lease.js';
import { startRedis, type RedisServer } from '../../support/redis-server.js';

describe('the transfer lease in a real Redis', () => {
  let server: RedisServer;
  let redisA: Redis;
  let redisB: Redis;
  beforeAll(async () => {
    server = await startRedis();
    redisA = new Redis(server.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
    redisB = new Redis(server.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    redisA.disconnect();
    redisB.disconnect();
    await server.stop();
  });

  it('exactly one instance gets the lease when both try at once', async () => {
    const a = new RedisTransferLease(redisA, { holderId: 'svc-a', ttlMs: 5_000 });
    const b = new RedisTransferLease(redisB, { holderId: 'svc-b', ttlMs: 5_000 });
    const ids = Array.from({ length: 50 }, () => randomUUID());
    const results = await Promise.all(ids.flatMap((id) => [a.acquire(id), b.acquire(id)]));
    for (let i = 0; i < ids.length; i++) expect([results[2 * i], results[2 * i + 1]].filter(Boolean)).toHaveLength(1);
  });

  it('names, among many transfers, the ones whose lease nobody holds', async () => {
    const a = new RedisTransferLease(redisA, { holderId: 'svc-a', ttlMs: 5_000 });
    const b = new RedisTransferLease(redisB, { holderId: 'svc-b', ttlMs: 5_000 });
    const ids = Array.from({ length: 1_203 }, () => randomUUID());
    const free = new Set(ids.filter((_, i) => i % 7 === 0 || i === ids.length - 1));
    await Promise.all(ids.filter((id) => !free.has(id)).map((id, i) => (i % 2 === 0 ? a : b).acquire(id)));
    expect(await b.unheld(ids)).toEqual(ids.filter((id) => free.has(id)));
    expect(await a.unheld([])).toEqual([]);
  });

  it('only the holder can renew or release, and the key always has a TTL', async () => {
    const a = new RedisTransferLease(redisA, { holderId: 'svc-a', ttlMs: 5_000 });
    const b = new RedisTransferLease(redisB, { holderId: 'svc-b', ttlMs: 5_000 });
    const id = randomUUID();
    expect(await a.acquire(id)).toBe(true);
    expect(await b.renew(id)).toBe(false);
    expect(await b.release(id)).toBe(false);
    expect(await a.holder(id)).toBe('svc-a');
    const ttl = await redisA.pttl(a.key(id));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5_000);
    expect(await a.renew(id)).toBe(true);
    expect(await a.release(id)).toBe(true);
    expect(await a.holder(id)).toBeNull();
    expect(await b.acquire(id)).toBe(true);
  });

  it('when the holder dies, the lease expires and another instance takes it over; the old holder then learns it lost it', async () => {
    const a = new RedisTransferLease(redisA, { holderId: 'svc-a', ttlMs: 300 });
    const b = new RedisTransferLease(redisB, { holderId: 'svc-b', ttlMs: 300 });
    const id = randomUUID();
    expect(await a.acquire(id)).toBe(true);
    expect(await b.acquire(id)).toBe(false);
    // svc-a stops renewing (it died, or paused longer than the TTL).
    await new Promise((r) => setTimeout(r, 400));
    expect(await b.acquire(id)).toBe(true);
    // svc-a wakes up: its renew fails and its release does not delete svc-b's lease.
    expect(await a.renew(id)).toBe(false);
    expect(await a.release(id)).toBe(false);
    expect(await b.holder(id)).toBe('svc-b');
  });

  it('its holder may take a lease again (an attempt whose reply was lost took it), with a fresh TTL; nobody else may', async () => {
    const a = new RedisTransferLease(redisA, { holderId: 'svc-a', ttlMs: 300 });
    const b = new RedisTransferLease(redisB, { holderId: 'svc-b', ttlMs: 300 });
    const id = randomUUID();
    expect(await a.acquire(id)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(await a.acquire(id)).toBe(true);
    await new Promise((r) => setTimeout(r, 200)); // past the first TTL, within the second
    expect(await b.acquire(id)).toBe(false);
    expect(await b.holder(id)).toBe('svc-a');
  });

  it('keep() renews while held, and reports the loss once when another instance holds it', async () => {
    const a = new RedisTransferLease(redisA, { holderId: 'svc-a', ttlMs: 300 });
    const id = randomUUID();
    await a.acquire(id);
    const losses: string[] = [];
    const stop = a.keep(id, (reason) => losses.push(reason));
    await new Promise((r) => setTimeout(r, 700)); // more than two TTLs: only renewals keep it
    expect(await a.holder(id)).toBe('svc-a');
    expect(losses).toEqual([]);
    await redisB.set(a.key(id), 'svc-b', 'PX', 5_000); // taken over (as after a pause past the TTL)
    await new Promise((r) => setTimeout(r, 250));
    expect(losses).toHaveLength(1);
    expect(await a.holder(id)).toBe('svc-b');
    stop();
  });

  it('keep() renews every kept lease in one round per interval, more than one script call of them, and drops only the lost one', async () => {
    const a = new RedisTransferLease(redisA, { holderId: 'svc-a', ttlMs: 600 });
    const ids = Array.from({ length: 1_200 }, () => randomUUID());
    await Promise.all(ids.map((id) => a.acquire(id)));
    const losses = new Map<string, string>();
    const stops = ids.map((id) => a.keep(id, (reason) => losses.set(id, reason)));
    await redisB.set(a.key(ids[700]!), 'svc-b', 'PX', 5_000);
    const stoppedId = ids[900]!;
    stops[900]!(); // this transfer ended here: its lease is no longer renewed, and nobody is told
    await new Promise((r) => setTimeout(r, 1_400)); // more than two TTLs
    expect([...losses.keys()]).toEqual([ids[700]]);
    expect(losses.get(ids[700]!)).toMatch(/held by another instance/);
    const holders = await redisA.mget(ids.map((id) => a.key(id)));
    expect(holders.filter((h) => h === 'svc-a')).toHaveLength(1_198);
    expect(holders[900]).toBeNull(); // expired: it was not renewed after stop
    expect(await a.holder(stoppedId)).toBeNull();
    for (const stop of stops) stop();
  });

  it('keep() renews each lease a third of a TTL after its last renewal, not all of them at once, a few per script call', async () => {
    const a = new RedisTransferLease(redisA, { holderId: 'svc-a', ttlMs: 3_000 });
    const early = Array.from({ length: 60 }, () => randomUUID());
    const late = Array.from({ length: 60 }, () => randomUUID());
    await Promise.all(early.map((id) => a.acquire(id)));
    const stops = early.map((id) => a.keep(id, () => undefined));
    await new Promise((r) => setTimeout(r, 600));
    await Promise.all(late.map((id) => a.acquire(id)));
    stops.push(...late.map((id) => a.keep(id, () => undefined)));
    const callsBefore = await renewCalls();
    // At 1.2 s the early leases (kept 1.2 s ago) are renewed; the late ones (0.6 s ago) not yet.
    await new Promise((r) => setTimeout(r, 600));
    const ttls = async (ids: string[]) => Promise.all(ids.map((id) => redisA.pttl(a.key(id))));
    expect(Math.min(...(await ttls(early)))).toBeGreaterThan(2_600);
    expect(Math.max(...(await ttls(late)))).toBeLessThan(2_500);
    // 60 leases went out in more than two calls (at most 25 a call), and none of the late ones yet.
    expect((await renewCalls()) - callsBefore).toBeGreaterThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 600));
    expect(Math.min(...(await ttls(late)))).toBeGreaterThan(2_600);
    for (const stop of stops) stop();
  });

  /** Script calls Redis has run so far (every lease command is one). */
  async function renewCalls(): Promise<number> {
    const stats = await redisB.info('commandstats');
    return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0) + Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  }
});
