// The stream bus on its own, with a TCP proxy between one instance's reader and Redis so that reader
// alone can be cut off while another instance keeps publishing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../src/adapters/redis/redis-connection.js';
import { RedisStreamEventBus } from '../../src/adapters/redis/redis-stream-event-bus.js';
import { summarise } from '../../src/domain/transfer.js';
import { transitionBusEvent, type SequencedEvent } from '../../src/ports.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startProxy, type Proxy } from '../support/tcp-proxy.js';
import { openFeed } from '../support/feed-client.js';
import { KEYS, startHarness } from '../support/harness.js';
import { aRecord, aTransfer } from '../support/transfer-fixture.js';

function detailOf(e: SequencedEvent | undefined): string | null {
  return e?.event.kind === 'store' ? e.event.detail : null;
}

describe('the Redis Stream bus', () => {
  let redis: RedisServer;
  let proxy: Proxy;
  const clients: Redis[] = [];
  const buses: RedisStreamEventBus[] = [];
  const connection = (port: number, commandTimeoutMs = 500) => {
    const client = connectRedis(`redis://127.0.0.1:${port}`, { commandTimeoutMs, connectTimeoutMs: 500 });
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  };
  /** Two instances' buses on one stream, once their connections are up (a loaded machine is slow to connect). */
  const pair = async (key: string, maxLength: number) => {
    const connections = clients.length;
    const a = new RedisStreamEventBus({
      writer: connection(redis.port),
      reader: connection(redis.port, 3000),
      key,
      maxLength,
      blockMs: 200,
    });
    // Instance B reads through the proxy; its writer (and the continuity check) go straight to Redis.
    const b = new RedisStreamEventBus({
      writer: connection(redis.port),
      reader: connection(proxy.port, 3000),
      key,
      maxLength,
      blockMs: 200,
    });
    buses.push(a, b);
    const seen: SequencedEvent[] = [];
    let gaps = 0;
    b.follow((e) => seen.push(e));
    b.onGap(() => (gaps += 1));
    await Promise.all(
      clients.slice(connections).map((c) => (c.status === 'ready' ? undefined : new Promise((resolve) => c.once('ready', resolve)))),
    );
    return { a, b, seen, gaps: () => gaps };
  };
  const event = (detail: string) => ({
    kind: 'store' as const,
    healthy: true,
    detail,
    at: new Date().toISOString(),
  });

  beforeAll(async () => {
    redis = await startRedis();
    proxy = await startProxy(redis.port);
  });
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close()));
    await Promise.allSettled(clients.map((c) => c.quit()));
    await proxy.close();
    await redis.stop();
  });

  it('a bus made while Redis is still connecting delivers what the stores write the moment it is up', async () => {
    const writer = connection(redis.port);
    expect(writer.status).not.toBe('ready');
    const bus = new RedisStreamEventBus({ writer, reader: connection(redis.port, 3000), key: 'connecting', maxLength: 100, blockMs: 200 });
    buses.push(bus);
    const seen: SequencedEvent[] = [];
    bus.follow((e) => seen.push(e));
    // The stores write on the same connection as soon as it is ready, as a first transfer would.
    await new Promise((resolve) => writer.once('ready', resolve));
    await writer.xadd('connecting', '*', 'e', JSON.stringify(event('first write')));
    await expect.poll(() => seen.map(detailOf)).toEqual(['first write']);
  });

  it("a transition one instance publishes reaches the other as it was, live and from the history, and takes the stream's compact form", async () => {
    const { a, b, seen } = await pair('compact', 1000);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the reader is waiting
    await a.publish(event('before'));
    const t = aTransfer({ state: 'failed', version: 6, failure: { reason: 'busy', cause: 'USER_BUSY' }, endedBy: 'target', updatedAt: '2026-11-23T08:00:04.321Z' });
    const transition = transitionBusEvent(t, { ...aRecord(t, 'target-failed'), from: 'ringing', detail: '486 忙' });
    await a.publish(transition);
    await expect.poll(() => seen.length).toBe(2);
    expect(seen[1]?.event).toEqual(transition);
    expect(await b.since(seen[0]!.seq, seen[1]!.seq, 10)).toEqual([{ seq: seen[1]!.seq, event: transition }]);
    const reader = connection(redis.port);
    await new Promise((resolve) => reader.once('ready', resolve));
    const [[, fields]] = (await reader.xrange('compact', seen[1]!.seq, seen[1]!.seq)) as [[string, string[]]];
    expect(fields[0]).toBe('t');
    expect(Buffer.byteLength(fields[1]!)).toBeLessThan(Buffer.byteLength(JSON.stringify(transition)) / 2);
  });

  it('an entry of the older form (the whole transfer, as instances before the upgrade write) is heard as a transition, summarised, live and on replay', async () => {
    const { b, seen } = await pair('legacy', 1000);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the reader is waiting
    const t = aTransfer({ state: 'ringing', version: 4 });
    const record = { ...aRecord(t, 'target-ringing'), from: 'dialing' as const };
    const writer = connection(redis.port);
    await new Promise((resolve) => writer.once('ready', resolve));
    const first = await writer.xadd('legacy', '*', 'e', JSON.stringify({ kind: 'store', healthy: true, detail: 'x', at: t.createdAt }));
    const id = await writer.xadd('legacy', '*', 'e', JSON.stringify({ kind: 'transfer', transfer: t, record }));
    const heard = { kind: 'transition', transfer: summarise(t), record };
    await expect.poll(() => seen.length).toBe(2);
    expect(seen[1]).toEqual({ seq: id, event: heard });
    expect(await b.since(first!, id!, 10)).toEqual([{ seq: id, event: heard }]);
    // A transfer entry that is not one (another writer's) is skipped, and the reader carries on.
    await writer.xadd('legacy', '*', 'e', JSON.stringify({ kind: 'transfer', transfer: null }));
    await writer.xadd('legacy', '*', 'e', JSON.stringify(event('after')));
    await expect.poll(() => seen.map(detailOf).at(-1)).toBe('after');
    expect(seen).toHaveLength(3);
  });

  it('an instance whose reader was cut off briefly gets every event it missed, in order, from the stream', async () => {
    const { a, seen, gaps } = await pair('brief', 1000);
    await new Promise((resolve) => setTimeout(resolve, 300)); // both readers are waiting
    await a.publish(event('before'));
    await expect.poll(() => seen.length).toBe(1);
    proxy.cut();
    for (let i = 0; i < 20; i += 1) await a.publish(event(`during ${i}`));
    proxy.restore();
    await expect.poll(() => seen.length, { timeout: 5000 }).toBe(21);
    expect(seen.map(detailOf)).toEqual(['before', ...Array.from({ length: 20 }, (_, i) => `during ${i}`)]);
    expect(gaps()).toBe(0);
  });

  it('an instance that was away while the history it had reached was trimmed reports a gap', async () => {
    const { a, seen, gaps } = await pair('trimmed', 100);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await a.publish(event('before'));
    await expect.poll(() => seen.length).toBe(1);
    proxy.cut();
    for (let i = 0; i < 1000; i += 1) await a.publish(event(`during ${i}`));
    proxy.restore();
    await expect.poll(() => gaps(), { timeout: 5000 }).toBe(1);
    await expect.poll(() => detailOf(seen.at(-1))).toBe('during 999');
    expect(seen.length).toBeLessThan(1001); // the trimmed ones are gone: that is the gap it reported
  });

  it("an instance's supervisors are sent away to resynchronise when it missed events, and get a fresh snapshot", async () => {
    const namespace = `g${Date.now().toString(36)}`;
    const one = await startHarness({ redisUrl: redis.url, namespace, feedHistorySize: 100 });
    const two = await startHarness({
      redisUrl: redis.url,
      namespace,
      feedHistorySize: 100,
      feedReaderUrl: `redis://127.0.0.1:${proxy.port}`,
    });
    try {
      const base = await two.listen();
      const watcher = await openFeed(base, { token: KEYS.supervisor });
      watcher.subscribe();
      await watcher.next('snapshot');
      await one.bus.publish(event('seen'));
      await watcher.next('store', (m) => m.detail === 'seen');
      const since = watcher.lastSeq();

      proxy.cut(); // instance two stops hearing the stream
      for (let i = 0; i < 500; i += 1) await one.bus.publish(event(`missed ${i}`));
      proxy.restore();

      expect(await watcher.closed).toEqual({ code: 1001, reason: expect.stringMatching(/missed events/) });
      const back = await openFeed(base, { token: KEYS.supervisor });
      back.subscribe({ since });
      expect(await back.next('resync', undefined, 5000)).toMatchObject({ since });
      await back.next('snapshot');
      await back.close();
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });
});
