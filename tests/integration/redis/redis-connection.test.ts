// The service's Redis connection against a real redis-server: what it sends in one pass of the job queue
// reaches Redis together, before and after a reconnect.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../../src/adapters/redis/redis-connection.js';
import { startRedis, type RedisServer } from '../../support/redis-server.js';

describe('the Redis connection', () => {
  let server: RedisServer;
  let probe: Redis;
  beforeAll(async () => {
    server = await startRedis();
    probe = new Redis(server.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
    probe.on('error', () => undefined); // while the server restarts
  });
  afterAll(async () => {
    probe.disconnect();
    await server.stop();
  });

  /** Reads Redis has made from its clients' sockets so far (this probe's own INFO is one). */
  const readsSoFar = async () => Number(/total_reads_processed:(\d+)/.exec(await probe.info('stats'))?.[1]);
  const ready = (client: Redis) =>
    client.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => client.once('ready', () => resolve()));

  /** 200 commands sent in one pass: how many reads Redis needed for them, and whether each got its own reply. */
  async function burst(client: Redis, tag: string): Promise<number> {
    const before = await readsSoFar();
    await Promise.all(Array.from({ length: 200 }, (_, i) => client.set(`${tag}:${i}`, `value ${i}`)));
    const values = await Promise.all(Array.from({ length: 200 }, (_, i) => client.get(`${tag}:${i}`)));
    const reads = (await readsSoFar()) - before - 1;
    expect(values).toEqual(Array.from({ length: 200 }, (_, i) => `value ${i}`));
    return reads;
  }

  it('sends what one pass of the job queue asks in one write (Redis reads 400 commands in a few reads), and again after a reconnect', async () => {
    const client = connectRedis(server.url, { commandTimeoutMs: 1000, connectTimeoutMs: 1000 });
    client.on('error', () => undefined);
    try {
      await ready(client);
      // Two passes (the SETs, then the GETs), each one write; a reply that Redis splits may cost a read more.
      expect(await burst(client, 'first')).toBeLessThanOrEqual(6);

      await server.restart(100);
      await Promise.all([ready(client), ready(probe)]);
      expect(await burst(client, 'after-restart')).toBeLessThanOrEqual(6);
    } finally {
      client.disconnect();
    }
  });
});
