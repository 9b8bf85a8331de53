// Several service instances on one Redis: only the lease holder drives a transfer, and when it dies
// another instance takes the transfer over and settles it from the switch.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../src/adapters/redis/keys.js';
import { connectRedis } from '../../src/adapters/redis/redis-connection.js';
import { RedisTransferLease } from '../../src/adapters/redis/transfer-lease.js';
import { auth, startHarness, transferBody, type Harness, type HarnessOptions } from '../support/harness.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startProxy, type Proxy } from '../support/tcp-proxy.js';
import { anOpening, aTransfer } from '../support/transfer-fixture.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => redis.stop());

const lease = (holderId: string) => ({ holderId, ttlMs: 400, takeoverIntervalMs: 100 });

describe('when the instance driving a transfer dies', () => {
  it('another instance takes it over, asks its switch what became of the legs, and drives it to the end', async () => {
    const a = await startHarness({ redisUrl: redis.url, lease: lease('svc-a') });
    const b = await startHarness({ redisUrl: redis.url, namespace: a.namespace!, lease: lease('svc-b') });
    try {
      a.callControl.answers.set('sw110', 'ring-only');
      const res = await a.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody() });
      const id = res.json().transfer.id as string;
      await expect.poll(async () => (await a.service.get(id)).state).toBe('ringing');
      const legId = (await a.service.get(id)).targetLegId!;

      // While A lives, B leaves the transfer alone, even when its own switch reports on the leg.
      await new Promise((r) => setTimeout(r, 600));
      expect(b.callControl.commands).toEqual([]);
      b.callControl.emit({ type: 'target-answered', transferId: id, legId });
      await new Promise((r) => setTimeout(r, 100));
      expect((await b.transfers.get(id))?.state).toBe('ringing');

      a.cutOffRedis();
      await expect.poll(() => b.callControl.commands.map((c) => c.type), { timeout: 5000 }).toContain('reconcile');
      const reconcile = b.callControl.commands.find((c) => c.type === 'reconcile');
      expect(reconcile?.type === 'reconcile' && reconcile.transfers).toEqual([
        expect.objectContaining({ transferId: id, state: 'ringing', targetLegId: legId }),
      ]);
      expect(b.logs.some((l) => l.msg === 'took over a transfer whose instance stopped driving it')).toBe(true);
      await expect.poll(() => a.logs.some((l) => l.msg === 'lease lost: this instance stops driving the transfer')).toBe(true);

      // B's switch reports the answer: B bridges it, A (cut off) does nothing.
      b.callControl.emit({ type: 'target-answered', transferId: id, legId });
      await expect.poll(async () => (await b.transfers.get(id))?.state).toBe('bridged');
      expect(b.callControl.commandsFor(id).map((c) => c.type)).toEqual(['bridgeToTarget', 'releaseAgent']);
      expect(a.callControl.commandsFor(id).map((c) => c.type)).toEqual(['placeCall']);
    } finally {
      await Promise.allSettled([a.close(), b.close()]);
    }
  });

  it('an instance shutting down hands its bridged calls over at once', async () => {
    const a = await startHarness({ redisUrl: redis.url, lease: { holderId: 'svc-c', ttlMs: 60_000, takeoverIntervalMs: 100 } });
    const b = await startHarness({ redisUrl: redis.url, namespace: a.namespace!, lease: lease('svc-d') });
    try {
      const id = (await a.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody() })).json()
        .transfer.id as string;
      await expect.poll(async () => (await a.service.get(id)).state).toBe('bridged');
      await a.service.drain(1000);
      await a.close();
      // Without the release B would wait out the 60 s lease.
      await expect.poll(() => b.callControl.commands.some((c) => c.type === 'reconcile'), { timeout: 3000 }).toBe(true);
      b.callControl.emit({ type: 'party-left', transferId: id, party: 'citizen', cause: 'NORMAL_CLEARING' });
      await expect.poll(async () => (await b.transfers.get(id))?.state).toBe('completed');
    } finally {
      await b.close();
    }
  });
});

describe('a cancel sent to an instance that does not drive the transfer', () => {
  it('is carried out by the instance that does, and answered with the cancelled transfer; once answered it is refused', async () => {
    const a = await startHarness({ redisUrl: redis.url, lease: lease('svc-k') });
    const b = await startHarness({ redisUrl: redis.url, namespace: a.namespace!, lease: lease('svc-l') });
    try {
      a.callControl.answers.set('sw110', 'ring-only');
      const press = () => a.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody() });
      const ringing = (await press()).json().transfer.id as string;
      await expect.poll(async () => (await a.service.get(ringing)).state).toBe('ringing');

      const cancelled = await b.app.inject({ method: 'DELETE', url: `/v1/transfers/${ringing}`, headers: auth('agent') });
      expect(cancelled.statusCode).toBe(200);
      expect(cancelled.json().state).toBe('cancelled');
      // A, which drives it, hung the ringing leg up and gave the call back to its agent; B sent nothing.
      expect(a.callControl.commandsFor(ringing).map((c) => c.type)).toEqual(['placeCall', 'hangUp', 'returnToAgent']);
      expect(b.callControl.commands).toEqual([]);

      const answered = (await press()).json().transfer.id as string;
      await expect.poll(async () => (await a.service.get(answered)).state).toBe('ringing');
      const legId = (await a.service.get(answered)).targetLegId!;
      a.callControl.emit({ type: 'target-answered', transferId: answered, legId });
      await expect.poll(async () => (await b.service.get(answered)).state).toBe('bridged');
      const refused = await b.app.inject({ method: 'DELETE', url: `/v1/transfers/${answered}`, headers: auth('agent') });
      expect(refused.statusCode).toBe(409);
      expect(refused.json().error.code).toBe('cannot_cancel');
      expect((await a.service.get(answered)).state).toBe('bridged');
    } finally {
      await Promise.allSettled([a.close(), b.close()]);
    }
  });
});

describe('a cancel for a transfer whose instance died', () => {
  it('is carried out by the instance asked, which takes the transfer over first, before any takeover round would', async () => {
    const a = await startHarness({ redisUrl: redis.url, lease: lease('svc-m') });
    // B looks for orphans only once a minute: the cancel itself must find this one.
    const b = await startHarness({ redisUrl: redis.url, namespace: a.namespace!, lease: { holderId: 'svc-n', ttlMs: 400, takeoverIntervalMs: 60_000 } });
    try {
      a.callControl.answers.set('sw110', 'ring-only');
      const id = (await a.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody() })).json()
        .transfer.id as string;
      await expect.poll(async () => (await a.service.get(id)).state).toBe('ringing');
      a.cutOffRedis();
      await expect.poll(() => a.logs.some((l) => l.msg === 'lease lost: this instance stops driving the transfer')).toBe(true);

      const cancelled = await b.app.inject({ method: 'DELETE', url: `/v1/transfers/${id}`, headers: auth('agent') });
      expect(cancelled.statusCode).toBe(200);
      expect(cancelled.json().state).toBe('cancelled');
      // B asked its switch about the legs, hung the ringing one up and gave the call back to the agent.
      expect(b.callControl.commandsFor(id).map((c) => c.type)).toEqual(['hangUp', 'returnToAgent']);
      expect(b.callControl.commands.some((c) => c.type === 'reconcile')).toBe(true);
      expect((await b.transfers.get(id))?.state).toBe('cancelled');
    } finally {
      await Promise.allSettled([a.close(), b.close()]);
    }
  });
});

describe('looking for orphans', () => {
  it('finds one behind more than a thousand live transfers other instances hold', async () => {
    const b = await startHarness({ redisUrl: redis.url, lease: lease('svc-g') });
    const connection = connectRedis(redis.url, { commandTimeoutMs: 2000, connectTimeoutMs: 1000 });
    const alive = new RedisTransferLease(connection, { holderId: 'svc-alive', ttlMs: 60_000, keyPrefix: redisKeys(b.namespace!).leasePrefix });
    try {
      // 1,100 live transfers, oldest first; an instance that still lives holds all but the newest.
      const at = (i: number) => new Date(Date.parse('2026-11-23T08:00:00.000Z') + i).toISOString();
      const stored = Array.from({ length: 1_100 }, (_, i) =>
        aTransfer({
          citizenLeg: { switchId: 'test-switch', legId: randomUUID() },
          state: 'ringing',
          targetLegId: randomUUID(),
          version: 4,
          createdAt: at(i),
          updatedAt: at(i),
        }),
      );
      const orphan = stored.at(-1)!;
      // The leases first: B looks for orphans every 100 ms.
      await new Promise<void>((resolve) => connection.once('ready', () => resolve()));
      // A hundred at a time: a thousand commands at once can outwait the command timeout on a slow machine.
      for (let i = 0; i < stored.length - 1; i += 100) {
        await Promise.all(stored.slice(i, Math.min(i + 100, stored.length - 1)).map((t) => alive.acquire(t.id)));
      }
      for (let i = 0; i < stored.length; i += 100) {
        await Promise.all(stored.slice(i, i + 100).map((t) => b.transfers.create(anOpening(t), { idempotencyKey: null, requestFingerprint: 'o' })));
      }

      await expect.poll(() => b.callControl.commands.filter((c) => c.type === 'reconcile').length, { timeout: 3000 }).toBe(1);
      const reconcile = b.callControl.commands.find((c) => c.type === 'reconcile');
      expect(reconcile?.type === 'reconcile' && reconcile.transfers.map((t) => t.transferId)).toEqual([orphan.id]);
      expect(await alive.holder(orphan.id)).toBe('svc-g');
      // Later rounds leave alone what this instance now drives and what the other still holds.
      await new Promise((r) => setTimeout(r, 400));
      expect(b.callControl.commands.filter((c) => c.type === 'reconcile')).toHaveLength(1);
    } finally {
      await b.close();
      connection.disconnect();
    }
  });
});

describe('when the store stored a press but its answer was lost', () => {
  type Press = () => Promise<{ statusCode: number; json: () => { error: { code: string } } }>;

  /** An instance whose store connection runs through a proxy, so its replies can be lost; its feed reads Redis directly. */
  async function behindProxy(lease?: HarnessOptions['lease']): Promise<{ proxy: Proxy; h: Harness }> {
    const proxy = await startProxy(redis.port);
    const h = await startHarness({ redisUrl: `redis://127.0.0.1:${proxy.port}`, feedReaderUrl: redis.url, ...(lease ? { lease } : {}) });
    return { proxy, h };
  }

  /** The first press: its one write reaches Redis, the reply is lost, then the link fails and comes back. */
  async function lostReply(h: Harness, proxy: Proxy, press: Press) {
    proxy.loseReplies();
    const first = await press();
    expect(first.statusCode).toBe(503);
    expect(first.json().error.code).toBe('store_unavailable');
    expect(h.callControl.commands).toEqual([]); // nothing was signalled on a write it could not confirm
    // The link fails: the client sees its connection drop, then reconnects.
    proxy.cut();
    const ready = async () => (await h.app.inject({ url: '/health/ready' })).statusCode;
    await expect.poll(ready).toBe(503);
    proxy.restore();
    await expect.poll(ready, { timeout: 5000 }).toBe(200);
  }

  it.each(['with', 'without'] as const)('the retried press on the same instance (%s leases) places the call the first attempt stored, on its leg', async (leases) => {
    // The takeover round is a minute away: only the retry can take the transfer on within this test.
    // With leases, the lease lives 10 s (the default): the first attempt's lease, taken in the same round
    // trip as its write, still stands when the retry comes, and is this instance's own.
    const { proxy, h } = await behindProxy(leases === 'with' ? { holderId: 'svc-e', ttlMs: 10_000, takeoverIntervalMs: 60_000 } : undefined);
    try {
      const body = transferBody();
      const press = () =>
        h.app.inject({ method: 'POST', url: '/v1/transfers', headers: { ...auth('agent'), 'idempotency-key': `press-lost-${leases}` }, payload: body });
      await lostReply(h, proxy, press);

      // The agent presses twice more at once: both are the same transfer, and one call goes out.
      const [retry, twin] = await Promise.all([press(), press()]);
      expect(retry.statusCode, retry.body).toBe(202);
      expect(retry.json().replay).toBe(true);
      const { id } = retry.json().transfer as { id: string };
      expect(twin.json()).toMatchObject({ replay: true, transfer: { id } });
      const placed = h.callControl.commands.filter((c) => c.type === 'placeCall');
      expect(placed).toHaveLength(1);
      // The leg the first attempt stored (the one an instance taking over would look for) is the one dialled.
      const [call] = placed;
      const dialStarted = (await h.service.auditTrail(id)).find((r) => r.event === 'dial-started');
      expect(dialStarted?.version).toBe(3);
      const { targetLegId } = await h.service.get(id);
      expect(call?.type === 'placeCall' && call.request).toMatchObject({ transferId: id, legId: targetLegId, target: { trunk: 'sw110' } });
      expect(h.callControl.commands.some((c) => c.type === 'reconcile')).toBe(false);
      await expect.poll(async () => (await h.service.get(id)).state).toBe('bridged');
      const again = await press();
      expect(again.json()).toMatchObject({ replay: true, transfer: { id, state: 'bridged' } });
      expect(h.callControl.commands.filter((c) => c.type === 'placeCall')).toHaveLength(1);
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it('a press under a new key asking the same is that press again: the call it stored goes out once; another request for the call is refused', async () => {
    const { proxy, h } = await behindProxy({ holderId: 'svc-p', ttlMs: 10_000, takeoverIntervalMs: 60_000 });
    try {
      const body = transferBody();
      const press = (key: string, payload: object = body) =>
        h.app.inject({ method: 'POST', url: '/v1/transfers', headers: { ...auth('agent'), 'idempotency-key': key }, payload });
      await lostReply(h, proxy, () => press('first-key'));

      // The softphone sends its next press with a key of its own.
      const again = await press('second-key');
      expect(again.statusCode, again.body).toBe(202);
      expect(again.json().replay).toBe(true);
      const { id } = again.json().transfer as { id: string };
      const placed = h.callControl.commands.filter((c) => c.type === 'placeCall');
      expect(placed).toHaveLength(1);
      expect(placed[0]?.type === 'placeCall' && placed[0].request.transferId).toBe(id);
      await expect.poll(async () => (await h.service.get(id)).state).toBe('bridged');

      // A different request for the same call (another desk) is not that press: the call is busy.
      const other = await press('third-key', { ...body, to: '119' });
      expect(other.statusCode).toBe(409);
      expect(other.json().error).toMatchObject({ code: 'call_already_transferring', details: { transferId: id } });
      expect(h.callControl.commands.filter((c) => c.type === 'placeCall')).toHaveLength(1);
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it('another instance retrying it cannot know whether the call went out: it asks the switch and settles from it', async () => {
    const { proxy, h: first } = await behindProxy({ holderId: 'svc-f', ttlMs: 400, takeoverIntervalMs: 60_000 });
    const second = await startHarness({
      redisUrl: redis.url,
      namespace: first.namespace!,
      lease: { holderId: 'svc-g', ttlMs: 400, takeoverIntervalMs: 60_000 },
    });
    try {
      const body = transferBody();
      const pressOn = (h: Harness) => () =>
        h.app.inject({ method: 'POST', url: '/v1/transfers', headers: { ...auth('agent'), 'idempotency-key': 'press-lost-2' }, payload: body });
      await lostReply(first, proxy, pressOn(first));
      await new Promise((r) => setTimeout(r, 500)); // the first attempt's lease lapses

      const retry = await pressOn(second)();
      expect(retry.statusCode, retry.body).toBe(202);
      const stored = retry.json().transfer as { id: string; state: string };
      expect(stored.state).toBe('dialing'); // the first attempt's one write got through
      const legId = (await second.service.get(stored.id)).targetLegId;
      expect(legId).toEqual(expect.any(String));
      expect(second.callControl.commands.filter((c) => c.type === 'placeCall')).toEqual([]);
      const reconcile = second.callControl.commands.find((c) => c.type === 'reconcile');
      expect(reconcile?.type === 'reconcile' && reconcile.transfers).toEqual([
        expect.objectContaining({ transferId: stored.id, state: 'dialing', targetLegId: legId }),
      ]);

      // The switch never had that leg (the call was not placed): its driver reports it gone.
      second.callControl.emit({
        type: 'target-failed',
        transferId: stored.id,
        legId: legId!,
        failure: 'switch-error',
        cause: 'CHANNEL_GONE_WHILE_DISCONNECTED',
      });
      await expect.poll(async () => (await second.service.get(stored.id)).state).toBe('failed');
      await expect.poll(() => second.callControl.commandsFor(stored.id).map((c) => c.type)).toEqual(['returnToAgent']);
    } finally {
      await second.close();
      await first.close();
      await proxy.close();
    }
  });
});

