import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openFeed, type FeedTestClient } from '../support/feed-client.js';
import { auth, KEYS, startHarness, transferBody, type Harness } from '../support/harness.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

const WHOLE = '13800138000';

describe('the live feed across two service instances on one real Redis', () => {
  let redis: RedisServer;
  let one: Harness;
  let two: Harness;
  let baseOne: string;
  let baseTwo: string;
  const open: FeedTestClient[] = [];
  const connect = async (base: string, token: string) => {
    const client = await openFeed(base, { token });
    open.push(client);
    return client;
  };
  const supervisorOn = async (base: string, since?: string | null) => {
    const client = await connect(base, KEYS.supervisor);
    client.subscribe(since === undefined ? {} : { since });
    return client;
  };
  const transferOn = async (h: Harness, overrides: Parameters<typeof transferBody>[0] = {}) => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/transfers',
      headers: auth('agent'),
      payload: transferBody(overrides),
    });
    expect(res.statusCode).toBe(202);
    return res.json().transfer as { id: string; ticketId: string };
  };
  const agentLeft = (id: string) => (m: { transfer: { id: string }; change: { event: string } }) =>
    m.transfer.id === id && m.change.event === 'party-left';

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => redis.stop());
  beforeEach(async () => {
    const namespace = `f${randomUUID().slice(0, 8)}`;
    one = await startHarness({ redisUrl: redis.url, namespace });
    two = await startHarness({ redisUrl: redis.url, namespace });
    baseOne = await one.listen();
    baseTwo = await two.listen();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
    await Promise.all([one.close(), two.close()]);
  });

  it('a supervisor on either instance sees the transfers of both, with the same sequence numbers', async () => {
    const onOne = await supervisorOn(baseOne);
    const onTwo = await supervisorOn(baseTwo);
    await Promise.all([onOne.next('snapshot'), onTwo.next('snapshot')]);

    const fromOne = await transferOn(one);
    const fromTwo = await transferOn(two, { to: '119' });
    for (const client of [onOne, onTwo]) {
      await client.next('transfer', agentLeft(fromOne.id));
      await client.next('transfer', agentLeft(fromTwo.id));
    }
    const seen = (client: FeedTestClient) =>
      client.messages.flatMap((m) =>
        m.type === 'transfer' ? [`${m.seq} ${m.transfer.id} ${m.transfer.state}`] : [],
      );
    expect(seen(onTwo)).toEqual(seen(onOne));
    expect(seen(onOne)).toHaveLength(14);
    expect(seen(onOne).every((line) => /^\d+-\d+ /.test(line))).toBe(true);

    // The day's counts are shared too: each instance counts the other's transfers once.
    await onTwo.next('stats', (m) => m.stats.requested === 2 && m.stats.connected === 2);
    await onOne.next('stats', (m) => m.stats.requested === 2 && m.stats.connected === 2);
  });

  it('a supervisor who drops from one instance resumes on the other from its last sequence', async () => {
    const first = await supervisorOn(baseOne);
    await first.next('snapshot');
    const early = await transferOn(one);
    await first.next('transfer', agentLeft(early.id));
    const since = first.lastSeq();
    await first.close();

    const watcher = await supervisorOn(baseTwo);
    await watcher.next('snapshot');
    const missed = await transferOn(one, { to: '119' });
    await watcher.next('transfer', agentLeft(missed.id));

    const back = await supervisorOn(baseTwo, since);
    const resumed = await back.next('resumed');
    const replayed = back.messages.filter((m) => m.type === 'transfer');
    expect(resumed.replayed).toBe(7);
    expect(replayed.map((m) => m.transfer.id)).toEqual(Array(7).fill(missed.id));
    expect(replayed.map((m) => m.seq)).toEqual(
      watcher.messages.flatMap((m) => (m.type === 'transfer' && m.transfer.id === missed.id ? [m.seq] : [])),
    );

    const lost = await supervisorOn(baseTwo, '1-0');
    expect(await lost.next('resync')).toMatchObject({ reason: 'too-old', since: '1-0' });
    await lost.next('snapshot');
  });

  it('the snapshot on one instance holds a call ringing on the other, and its seat gets the pop with the whole number', async () => {
    one.callControl.answers.set('sw110', 'ring-only');
    const seat = await connect(baseTwo, KEYS.seat);
    seat.subscribe({ seat: { desk: '110', seatId: 'S-110-02' } });
    await seat.next('snapshot');

    const ringing = await transferOn(one);
    const pop = await seat.next('screen-pop');
    expect(pop.pop).toMatchObject({
      transferId: ringing.id,
      stub: { ticketId: ringing.ticketId, callerNumber: WHOLE },
    });

    const late = await supervisorOn(baseTwo);
    const snapshot = await late.next('snapshot');
    expect(snapshot.transfers.map((t) => [t.id, t.state, t.callerId])).toEqual([
      [ringing.id, 'ringing', '138****8000'],
    ]);
    expect(late.raw.join('\n')).not.toContain(WHOLE);
    expect([...one.rawLogs, ...two.rawLogs].join('\n')).not.toContain(WHOLE);
  });

  it('with Redis down, supervisors on the instance that makes an emergency transfer still see it and the store failure', async () => {
    const onOne = await supervisorOn(baseOne);
    await onOne.next('snapshot');
    const back = redis.restart(1500);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the server is down now
    const late = await supervisorOn(baseOne); // connects while the store is away
    const degraded = await late.next('snapshot');
    expect(degraded.store).toMatchObject({ healthy: false });
    expect(degraded.transfers).toEqual([]);
    const emergency = await transferOn(one, { priority: 'emergency' });
    await late.next('transfer', (m) => m.transfer.id === emergency.id && m.transfer.priority === 'emergency');
    const seen = await onOne.next(
      'transfer',
      (m) => m.transfer.id === emergency.id && m.transfer.state === 'bridged',
    );
    expect(seen.transfer).toMatchObject({
      priority: 'emergency',
      callerId: '138****8000',
      stubDeferred: true,
    });
    expect(seen.seq).toMatch(/^local-/);
    await onOne.next('store', (m) => !m.healthy);
    await back;
    // Once Redis is back the deferred writes land and the feed says so, through the shared stream.
    const healthy = await onOne.next('store', (m) => m.healthy, 10_000);
    expect(healthy.seq).toMatch(/^\d+-\d+$/);
  });

  it("a switch's state change on one instance reaches supervisors on the other", async () => {
    const onTwo = await supervisorOn(baseTwo);
    await onTwo.next('snapshot');
    one.callControl.setState('disconnected');
    const change = await onTwo.next('switch', (m) => m.status.state === 'disconnected');
    expect(change.status).toMatchObject({ switchId: 'test-switch', desk: '12345' });
  });
});
