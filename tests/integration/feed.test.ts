import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { summarise } from '../../src/domain/transfer.js';
import { CLOSE } from '../../src/feed/protocol.js';
import { openFeed, refusedHandshake, type FeedTestClient } from '../support/feed-client.js';
import { auth, KEYS, startHarness, transferBody, type Harness } from '../support/harness.js';

const WHOLE = '13800138000';
const MASKED = '138****8000';

async function transfer(h: Harness, overrides: Parameters<typeof transferBody>[0] = {}) {
  const res = await h.app.inject({
    method: 'POST',
    url: '/v1/transfers',
    headers: auth('agent'),
    payload: transferBody(overrides),
  });
  expect(res.statusCode).toBe(202);
  return res.json().transfer as { id: string; ticketId: string };
}

describe('the live feed (one instance, in memory)', () => {
  let h: Harness;
  let base: string;
  const open: FeedTestClient[] = [];
  const connect = async (options: Parameters<typeof openFeed>[1]) => {
    const client = await openFeed(base, options);
    open.push(client);
    return client;
  };

  beforeEach(async () => {
    h = await startHarness({ feed: { desksByKey: {} } });
    base = await h.listen();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
    await h.close();
  });

  describe('the pages', () => {
    it('serves the wall and the seat example with a strict Content-Security-Policy, and no data in them', async () => {
      for (const url of ['/wall', '/seat', '/wall/wall.js', '/wall/feed-client.js', '/wall/wall.css']) {
        const res = await h.app.inject({ method: 'GET', url, headers: { host: 'linkage.example' } });
        expect(res.statusCode, url).toBe(200);
        expect(res.headers['content-security-policy']).toContain("default-src 'self'");
        expect(res.headers['content-security-policy']).toContain('connect-src');
        expect(res.body).not.toContain(WHOLE);
      }
      const wall = await h.app.inject({ method: 'GET', url: '/wall' });
      expect(wall.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(wall.body).toContain('Transfer wall');
    });
  });

  describe('the handshake', () => {
    it('without an API key, is refused with 401 before the upgrade', async () => {
      expect(await refusedHandshake(base)).toEqual({ status: 401, code: 'unauthorized' });
      expect(await refusedHandshake(base, { token: 'not-a-key-of-ours-000' })).toEqual({
        status: 401,
        code: 'unauthorized',
      });
    });

    it('with an agent or PBX key, is refused with 403: only supervisors and seats have a feed', async () => {
      expect(await refusedHandshake(base, { token: KEYS.agent })).toEqual({ status: 403, code: 'forbidden' });
      expect(await refusedHandshake(base, { token: KEYS.pbx })).toEqual({ status: 403, code: 'forbidden' });
    });

    it('from a browser Origin not in config, is refused with 403; a configured one and our own pages are let in', async () => {
      expect(await refusedHandshake(base, { token: KEYS.supervisor, origin: 'http://evil.example' })).toEqual(
        {
          status: 403,
          code: 'forbidden',
        },
      );
      const configured = await connect({ token: KEYS.supervisor, origin: 'http://wall.example.test' });
      await configured.next('hello');
      const own = await connect({ token: KEYS.supervisor, origin: base });
      await own.next('hello');
    });

    it('without the feed subprotocol, or on another path, is refused', async () => {
      expect(await refusedHandshake(base, { protocols: [`bearer.${KEYS.supervisor}`] })).toEqual({
        status: 400,
        code: 'invalid_request',
      });
      expect(await refusedHandshake(base, { token: KEYS.supervisor, path: '/v1/other' })).toEqual({
        status: 404,
        code: 'not_found',
      });
    });

    it('answers with the feed subprotocol only, never echoing the key', async () => {
      const client = await connect({ token: KEYS.supervisor });
      expect(client.ws.protocol).toBe('hotline-feed.v1');
    });
  });

  describe('a supervisor', () => {
    it('gets a snapshot of live transfers and switches, then every transition with a sequence, numbers masked', async () => {
      h.callControl.answers.set('sw110', 'ring-only');
      const before = await transfer(h);
      await expect.poll(async () => (await h.service.get(before.id)).state).toBe('ringing');

      const client = await connect({ token: KEYS.supervisor });
      const hello = await client.next('hello');
      expect(hello).toMatchObject({ role: 'supervisor', desks: ['*'] });
      client.subscribe();
      const snapshot = await client.next('snapshot');
      expect(snapshot.transfers.map((t) => [t.id, t.state, t.callerId, t.category])).toEqual([
        [before.id, 'ringing', MASKED, '0301'],
      ]);
      expect(snapshot.switches).toEqual([
        expect.objectContaining({ switchId: 'test-switch', state: 'connected' }),
      ]);
      expect(snapshot.stats).toMatchObject({ requested: 1, connected: 0 });

      h.callControl.answers.set('sw110', 'answer');
      const after = await transfer(h, { to: '119', mode: 'three-way' });
      await client.next('transfer', (m) => m.transfer.id === after.id && m.transfer.state === 'conferenced');
      const states = client.messages.flatMap((m) =>
        m.type === 'transfer' && m.transfer.id === after.id ? [m.transfer.state] : [],
      );
      expect(states).toEqual(['requested', 'stub-stored', 'dialing', 'ringing', 'answered', 'conferenced']);
      const deltas = client.messages.filter((m) => m.type === 'transfer');
      expect(new Set(deltas.map((m) => m.seq)).size).toBe(deltas.length);
      for (const delta of deltas) expect(delta.v).toBe(1);
      const stats = await client.next('stats', (m) => m.stats.requested === 2 && m.stats.connected === 1);
      expect(stats.stats.failed).toBe(0);

      expect(client.raw.join('\n')).not.toContain(WHOLE);
      expect(client.raw.join('\n')).toContain(MASKED);
      expect(h.rawLogs.join('\n')).not.toContain(WHOLE);
    });

    it('who connects after a day nobody watched gets its counts, failures with category and masked number', async () => {
      h.callControl.answers.set('sw110', { fail: 'busy', cause: 'USER_BUSY' });
      h.callControl.answers.set('sw110-backup', { fail: 'rejected', cause: 'CALL_REJECTED' });
      const failed = await transfer(h);
      await expect.poll(async () => (await h.service.get(failed.id)).state).toBe('failed');
      h.callControl.answers.delete('sw110');
      const bridged = await transfer(h);
      await expect.poll(async () => (await h.service.get(bridged.id)).state).toBe('bridged');

      const client = await connect({ token: KEYS.supervisor });
      client.subscribe();
      const snapshot = await client.next('snapshot');
      expect(snapshot.transfers.map((t) => [t.id, t.state, t.category])).toEqual([[bridged.id, 'bridged', '0301']]);
      expect(snapshot.stats).toMatchObject({ requested: 2, connected: 1, failed: 1 });
      expect(snapshot.stats?.recentFailures).toEqual([
        expect.objectContaining({ transferId: failed.id, reason: 'rejected', callerId: MASKED, category: '0301' }),
      ]);
      // And from here on it follows live.
      const next = await transfer(h);
      await client.next('transfer', (m) => m.transfer.id === next.id && m.transfer.state === 'bridged');
    });

    it('who may watch only some desks sees only transfers touching them', async () => {
      await h.close();
      h = await startHarness({ feed: { desksByKey: { 'test-supervisor': ['119'] } } });
      base = await h.listen();
      const client = await connect({ token: KEYS.supervisor });
      client.subscribe();
      await client.next('snapshot');
      const to110 = await transfer(h);
      const to119 = await transfer(h, { to: '119' });
      await client.next('transfer', (m) => m.transfer.id === to119.id && m.transfer.state === 'bridged');
      await expect.poll(async () => (await h.service.get(to110.id)).state).toBe('bridged');
      expect(client.messages.some((m) => m.type === 'transfer' && m.transfer.id === to110.id)).toBe(false);
    });

    it('sees failures of the day counted with the reason and the masked number', async () => {
      h.callControl.answers.set('sw110', { fail: 'busy', cause: 'USER_BUSY' });
      h.callControl.answers.set('sw110-backup', { fail: 'rejected', cause: 'CALL_REJECTED' });
      const client = await connect({ token: KEYS.supervisor });
      client.subscribe();
      await client.next('snapshot');
      const failed = await transfer(h);
      const stats = await client.next('stats', (m) => m.stats.failed === 1);
      expect(stats.stats.recentFailures).toEqual([
        expect.objectContaining({
          transferId: failed.id,
          reason: 'rejected',
          callerId: MASKED,
          category: '0301',
        }),
      ]);
    });
  });

  describe('a receiving seat', () => {
    it('gets the ticket stub with the whole number when a transfer to its desk rings, and its end; other desks get nothing', async () => {
      h.callControl.answers.set('sw110', 'ring-only');
      const seat = await connect({ token: KEYS.seat });
      seat.subscribe({ seat: { desk: '110', seatId: 'S-110-07' } });
      await seat.next('snapshot');
      const elsewhere = await connect({ token: KEYS.seat });
      elsewhere.subscribe({ seat: { desk: '119', seatId: 'S-119-01' } });
      await elsewhere.next('snapshot');
      const supervisor = await connect({ token: KEYS.supervisor });
      supervisor.subscribe();
      await supervisor.next('snapshot');

      const made = await transfer(h);
      const pop = await seat.next('screen-pop');
      expect(pop.pop.transferId).toBe(made.id);
      expect(pop.pop.stub).toMatchObject({
        ticketId: made.ticketId,
        callerNumber: WHOLE,
        callerName: '王先生',
        categoryCode: '0301',
      });

      const cancelled = await h.app.inject({
        method: 'DELETE',
        url: `/v1/transfers/${made.id}`,
        headers: auth('agent'),
      });
      expect(cancelled.statusCode).toBe(200);
      expect(await seat.next('screen-pop-end')).toMatchObject({ transferId: made.id, state: 'cancelled' });

      await supervisor.next('transfer', (m) => m.transfer.id === made.id && m.transfer.state === 'cancelled');
      expect(
        elsewhere.messages.filter((m) => m.type === 'screen-pop' || m.type === 'screen-pop-end'),
      ).toEqual([]);
      expect(supervisor.raw.join('\n')).not.toContain(WHOLE);
      expect(h.rawLogs.join('\n')).not.toContain(WHOLE);
    });

    it('that connects while a call already rings at its desk gets it in the snapshot', async () => {
      h.callControl.answers.set('sw110', 'ring-only');
      const made = await transfer(h);
      await expect.poll(async () => (await h.service.get(made.id)).state).toBe('ringing');
      const seat = await connect({ token: KEYS.seat });
      seat.subscribe({ seat: { desk: '110', seatId: 'S-110-07' } });
      const snapshot = await seat.next('snapshot');
      expect(snapshot.pops.map((p) => [p.transferId, p.stub?.callerNumber])).toEqual([[made.id, WHOLE]]);
      expect(snapshot.transfers).toEqual([]);
    });

    it('whose key is limited to some desks is closed with 4403 when it asks for another', async () => {
      await h.close();
      h = await startHarness({ feed: { desksByKey: { 'test-seat': ['12345'] } } });
      base = await h.listen();
      const seat = await connect({ token: KEYS.seat });
      seat.subscribe({ seat: { desk: '110', seatId: 'S1' } });
      expect((await seat.closed).code).toBe(CLOSE.forbidden);
      expect(seat.messages.at(-1)).toMatchObject({ type: 'error', code: 'forbidden' });
    });

    it('that subscribes without its desk and seat id is closed with 4400', async () => {
      const seat = await connect({ token: KEYS.seat });
      seat.subscribe();
      expect((await seat.closed).code).toBe(CLOSE.invalidMessage);
    });
  });

  describe('the protocol', () => {
    it('closes a client that sends something that is not a protocol message (4400), a supervisor posing as a seat (4400), or too large a frame (1009)', async () => {
      const garbled = await connect({ token: KEYS.supervisor });
      garbled.ws.send('{"v":1,"type":"subscribe","extra":true}');
      expect((await garbled.closed).code).toBe(CLOSE.invalidMessage);

      const notJson = await connect({ token: KEYS.supervisor });
      notJson.ws.send('subscribe please');
      expect((await notJson.closed).code).toBe(CLOSE.invalidMessage);

      // A supervisor's key cannot pose as a seat (a seat's pop carries the whole number).
      const posing = await connect({ token: KEYS.supervisor });
      posing.subscribe({ seat: { desk: '110', seatId: 'S1' } });
      expect((await posing.closed).code).toBe(CLOSE.invalidMessage);
      expect(posing.messages.at(-1)).toMatchObject({ type: 'error', code: 'invalid_message' });

      const big = await connect({ token: KEYS.supervisor });
      big.ws.send(JSON.stringify({ v: 1, type: 'ping', id: 'x'.repeat(10_000) }));
      expect((await big.closed).code).toBe(1009);
    });

    it('closes a client that subscribes twice (4400)', async () => {
      const client = await connect({ token: KEYS.supervisor });
      client.subscribe();
      client.subscribe();
      expect((await client.closed).code).toBe(CLOSE.invalidMessage);
    });

    it('answers a ping with a pong', async () => {
      const client = await connect({ token: KEYS.supervisor });
      client.ws.send(JSON.stringify({ v: 1, type: 'ping', id: 'p1' }));
      expect(await client.next('pong')).toMatchObject({ id: 'p1' });
    });

    it('after a reconnect with the last sequence, gives exactly what was missed; an unknown sequence gets a resync and a snapshot', async () => {
      // A blind transfer ends its run of events when the agent's leg leaves the bridge.
      const agentLeft = (id: string) => (m: { transfer: { id: string }; change: { event: string } }) =>
        m.transfer.id === id && m.change.event === 'party-left';
      const watcher = await connect({ token: KEYS.supervisor });
      watcher.subscribe();
      await watcher.next('snapshot');
      const first = await connect({ token: KEYS.supervisor });
      first.subscribe();
      await first.next('snapshot');
      const early = await transfer(h);
      await first.next('transfer', agentLeft(early.id));
      const since = first.lastSeq();
      await first.close();

      const missed = await transfer(h, { to: '119' });
      await watcher.next('transfer', agentLeft(missed.id));

      const again = await connect({ token: KEYS.supervisor });
      again.subscribe({ since });
      const resumed = await again.next('resumed');
      const replayed = again.messages.filter((m) => m.type === 'transfer');
      expect(resumed.replayed).toBe(replayed.length);
      expect(replayed.map((m) => m.transfer.state)).toEqual([
        'requested',
        'stub-stored',
        'dialing',
        'ringing',
        'answered',
        'bridged',
        'bridged',
      ]);
      expect(replayed.every((m) => m.transfer.id === missed.id)).toBe(true);
      expect(again.messages.some((m) => m.type === 'snapshot')).toBe(false);

      const stranger = await connect({ token: KEYS.supervisor });
      stranger.subscribe({ since: 'abc-1' });
      expect(await stranger.next('resync')).toMatchObject({ reason: 'too-old', since: 'abc-1' });
      await stranger.next('snapshot');
    });

    it('drops a client that reads too slowly with 4429, while the others get every event and transfers go on', async () => {
      await h.close();
      h = await startHarness({ feed: { maxBufferedBytes: 64 * 1024 } });
      base = await h.listen();
      const slow = await connect({ token: KEYS.supervisor });
      slow.subscribe();
      await slow.next('snapshot');
      const fast = await connect({ token: KEYS.supervisor });
      fast.subscribe();
      await fast.next('snapshot');

      const model = await transfer(h);
      await fast.next('transfer', (m) => m.transfer.id === model.id && m.transfer.state === 'bridged');
      const t = await h.service.get(model.id);
      slow.ws.pause(); // stops reading: the kernel buffers fill, then the server's send buffer
      let burst = 0;
      for (let i = 0; i < 40_000 && h.feed.droppedSlow === 0; i += 1) {
        burst += 1;
        // Events arrive from the switch and Redis over time, not in one tick: let I/O run now and then.
        if (i % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
        await h.bus.publish({
          kind: 'transition',
          transfer: summarise({ ...t, version: 100 + i }),
          record: {
            transferId: t.id,
            at: t.updatedAt,
            from: 'bridged',
            to: 'bridged',
            event: 'party-left',
            version: 100 + i,
          },
        });
      }
      expect(h.feed.droppedSlow).toBe(1);
      slow.ws.resume(); // reads what was queued, then the close frame with the reason
      const { code, reason } = await slow.closed;
      expect(code).toBe(CLOSE.slowConsumer);
      expect(reason).toMatch(/slow consumer/);

      // The fast client got the whole burst, and a transfer made now still goes through at once.
      await fast.next('transfer', (m) => m.transfer.version === 100 + burst - 1, 10_000);
      const after = await transfer(h, { to: '119' });
      await fast.next('transfer', (m) => m.transfer.id === after.id && m.transfer.state === 'bridged');

      // It comes back from where it stopped: what is still kept, or a resync with a fresh snapshot.
      const back = await connect({ token: KEYS.supervisor });
      back.subscribe({ since: slow.lastSeq() });
      await Promise.race([back.next('resumed', undefined, 10_000), back.next('snapshot', undefined, 10_000)]);
    });

    it('closes with 4408 a client that never subscribes', async () => {
      await h.close();
      h = await startHarness({ feed: { subscribeTimeoutMs: 150 } });
      base = await h.listen();
      const idle = await connect({ token: KEYS.supervisor });
      expect((await idle.closed).code).toBe(CLOSE.subscribeTimeout);
    });

    it('drops a client that stops answering pings, and sends heartbeats with the sequence to the others', async () => {
      await h.close();
      h = await startHarness({ feed: { heartbeatMs: 150 } });
      base = await h.listen();
      const dead = await connect({ token: KEYS.supervisor, autoPong: false });
      dead.subscribe();
      const alive = await connect({ token: KEYS.supervisor });
      alive.subscribe();
      await alive.next('snapshot');
      expect((await dead.closed).code).toBe(1006); // terminated: no close frame for a dead peer
      await alive.next('heartbeat');
      expect(h.feed.clientCount).toBe(1);
    });
  });
});
