// One contract for the stores, run against every adapter: in memory, and a real redis-server.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEventBus } from '../../src/adapters/memory/memory-event-bus.js';
import { MemoryTicketStore, MemoryTransferStore } from '../../src/adapters/memory/memory-stores.js';
import { redisKeys } from '../../src/adapters/redis/keys.js';
import { connectRedis } from '../../src/adapters/redis/redis-connection.js';
import { RedisTicketStore, RedisTransferStore } from '../../src/adapters/redis/redis-stores.js';
import { eventOfEntry, transitionEntryValue } from '../../src/adapters/redis/feed-stream-entry.js';
import type { TransferRouting } from '../../src/domain/routing-decision.js';
import { summarise, type Transfer } from '../../src/domain/transfer.js';
import { LIVE_LIST_CAP, type BusEvent, type TicketStore, type TransferStore } from '../../src/ports.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { aRecord, anOpening, aTransfer, TICKET_STUB } from '../support/transfer-fixture.js';

interface Stores {
  tickets: TicketStore;
  transfers: TransferStore;
  /** The transfer events the store has published (its outbox), oldest first. */
  published(): Promise<BusEvent[]>;
}

const transfer = aTransfer;

const record = aRecord;
const stub = TICKET_STUB;
const opening = anOpening;

/** What the store published about one transfer: its events' records and versions. */
async function publishedFor(s: Stores, transferId: string): Promise<{ event: string; version: number; state: string }[]> {
  return (await s.published()).flatMap((e) =>
    e.kind === 'transition' && e.transfer.id === transferId
      ? [{ event: e.record.event, version: e.record.version, state: e.transfer.state }]
      : [],
  );
}

function contract(name: string, make: () => Promise<Stores>) {
  describe(`${name} stores`, () => {
    let s: Stores;
    beforeAll(async () => {
      s = await make();
    });

    it('stores a ticket stub whole and reads it back', async () => {
      await s.tickets.put(stub, 60);
      expect(await s.tickets.get(stub.ticketId)).toEqual(stub);
      expect(await s.tickets.get('GD-missing')).toBeNull();
    });

    it('creates a transfer with its stub and its audit trail', async () => {
      const t = transfer();
      expect(await s.transfers.create(opening(t), { idempotencyKey: null, requestFingerprint: 'f' })).toEqual({ outcome: 'created' });
      expect(await s.transfers.get(t.id)).toEqual(t);
      expect(await s.transfers.auditTrail(t.id)).toEqual([record(t)]);
      expect(await s.tickets.get(t.ticketId)).toEqual({ ...stub, ticketId: t.ticketId });
      expect(await publishedFor(s, t.id)).toEqual([{ event: 'created', version: 1, state: 'requested' }]);
    });

    it('publishes each transition with the transfer summarised: the caller masked, no legs, trunks or routing basis', async () => {
      const t = { ...transfer(), presentedCallerId: { kind: 'number' as const, national: '13912345678', type: 'mobile' as const } };
      await s.transfers.create(opening(t), { idempotencyKey: null, requestFingerprint: 's' });
      const ringing = { ...t, state: 'ringing' as const, version: 2, targetLegId: randomUUID() };
      expect(await s.transfers.save([{ transfer: ringing, record: { ...record(ringing, 'target-ringing'), from: 'requested' } }])).toBe('saved');
      const mine = (await s.published()).filter((e) => e.kind === 'transition' && e.transfer.id === t.id);
      expect(mine).toHaveLength(2);
      expect(mine[1]).toEqual({ kind: 'transition', transfer: summarise(ringing), record: { ...record(ringing, 'target-ringing'), from: 'requested' } });
      expect(mine[1]?.kind === 'transition' && mine[1].transfer.callerId).toBe('139****5678');
      // Nothing every instance hears holds the whole number, the legs or the trunks.
      const heard = JSON.stringify(mine);
      for (const secret of ['13912345678', ringing.targetLegId, t.citizenLeg.legId, ...t.target.trunks]) expect(heard).not.toContain(secret);
    });

    it('stores and publishes every transition made before the first write, in order, with the transfer after the last', async () => {
      const requested = transfer();
      const stored = { ...requested, state: 'stub-stored' as const, version: 2 };
      const dialing = { ...requested, state: 'dialing' as const, version: 3, targetLegId: randomUUID() };
      const steps = [
        { transfer: requested, record: record(requested) },
        { transfer: stored, record: { ...record(stored, 'stub-stored'), from: 'requested' as const } },
        { transfer: dialing, record: { ...record(dialing, 'dial-started'), from: 'stub-stored' as const } },
      ];
      expect(await s.transfers.create(opening(requested, steps), { idempotencyKey: null, requestFingerprint: 'o' })).toEqual({
        outcome: 'created',
      });
      expect(await s.transfers.get(requested.id)).toEqual(dialing);
      expect(await s.transfers.auditTrail(requested.id)).toEqual(steps.map((step) => step.record));
      expect(await publishedFor(s, requested.id)).toEqual([
        { event: 'created', version: 1, state: 'requested' },
        { event: 'stub-stored', version: 2, state: 'stub-stored' },
        { event: 'dial-started', version: 3, state: 'dialing' },
      ]);
      expect(await s.transfers.save([{ transfer: dialing, record: steps[2]!.record }])).toBe('stale');
      expect(await publishedFor(s, requested.id)).toHaveLength(3); // a stale write publishes nothing
    });

    it('stores consecutive transitions in one save: the transfer after the last, every record and event in order', async () => {
      const t = transfer();
      const steps = opening(t).steps;
      await s.transfers.create(opening(t), { idempotencyKey: null, requestFingerprint: 'm' });
      const dialing = { ...t, state: 'dialing' as const, version: 2, targetLegId: randomUUID() };
      const ringing = { ...dialing, state: 'ringing' as const, version: 3, updatedAt: '2026-11-23T08:00:02.000Z' };
      const answered = { ...ringing, state: 'answered' as const, version: 4, updatedAt: '2026-11-23T08:00:05.000Z' };
      const later = [
        { transfer: ringing, record: { ...record(ringing, 'target-ringing'), from: 'dialing' as const } },
        { transfer: answered, record: { ...record(answered, 'target-answered'), from: 'ringing' as const } },
      ];
      expect(await s.transfers.save([{ transfer: dialing, record: { ...record(dialing, 'dial-started'), from: 'requested' } }])).toBe('saved');
      expect(await s.transfers.save(later)).toBe('saved');
      expect(await s.transfers.get(t.id)).toEqual(answered);
      expect((await s.transfers.auditTrail(t.id)).map((r) => [r.event, r.version])).toEqual([
        [steps[0]!.record.event, 1],
        ['dial-started', 2],
        ['target-ringing', 3],
        ['target-answered', 4],
      ]);
      expect(await publishedFor(s, t.id)).toEqual([
        { event: 'created', version: 1, state: 'requested' },
        { event: 'dial-started', version: 2, state: 'dialing' },
        { event: 'target-ringing', version: 3, state: 'ringing' },
        { event: 'target-answered', version: 4, state: 'answered' },
      ]);
      // The same save again, or one whose first step the store holds, writes none of its steps.
      expect(await s.transfers.save(later)).toBe('stale');
      const bridged = { ...answered, state: 'bridged' as const, version: 5 };
      expect(await s.transfers.save([later[1]!, { transfer: bridged, record: { ...record(bridged, 'bridged'), from: 'answered' } }])).toBe('stale');
      expect(await s.transfers.get(t.id)).toEqual(answered);
      expect(await s.transfers.auditTrail(t.id)).toHaveLength(4);
      expect(await publishedFor(s, t.id)).toHaveLength(4);
    });

    it('refuses a save of no steps', async () => {
      await expect(s.transfers.save([])).rejects.toThrow(RangeError);
    });

    it('answers a repeated idempotency key with the first transfer, and tells a different request apart', async () => {
      const key = randomUUID();
      const first = transfer();
      await s.transfers.create(opening(first), { idempotencyKey: key, requestFingerprint: 'a' });
      const again = transfer();
      expect(await s.transfers.create(opening(again), { idempotencyKey: key, requestFingerprint: 'a' })).toEqual({
        outcome: 'replay',
        transferId: first.id,
        sameRequest: true,
      });
      expect(await s.transfers.create(opening(again), { idempotencyKey: key, requestFingerprint: 'b' })).toMatchObject({
        sameRequest: false,
      });
      expect(await s.transfers.get(again.id)).toBeNull();
      expect(await s.tickets.get(again.ticketId)).toBeNull(); // a replay writes no stub
      expect(await publishedFor(s, again.id)).toEqual([]); // and publishes nothing
    });

    it('makes one transfer of many concurrent creates with one key', async () => {
      const key = randomUUID();
      const attempts = Array.from({ length: 20 }, () => transfer());
      const results = await Promise.all(
        attempts.map((t) => s.transfers.create(opening(t), { idempotencyKey: key, requestFingerprint: 'same' })),
      );
      expect(results.filter((r) => r.outcome === 'created')).toHaveLength(1);
      const winner = attempts[results.findIndex((r) => r.outcome === 'created')]!;
      expect(results.filter((r) => r.outcome === 'replay').every((r) => r.outcome === 'replay' && r.transferId === winner.id)).toBe(true);
    });

    it('refuses a second transfer of a call that is being transferred, until the first ends', async () => {
      const first = transfer();
      await s.transfers.create(opening(first), { idempotencyKey: null, requestFingerprint: 'x' });
      const second = transfer({ citizenLeg: first.citizenLeg });
      expect(await s.transfers.create(opening(second), { idempotencyKey: null, requestFingerprint: 'y' })).toEqual({
        outcome: 'call-busy',
        transferId: first.id,
      });
      expect(await s.tickets.get(second.ticketId)).toBeNull();
      const ended = { ...first, state: 'failed' as const, version: 2 };
      expect(await s.transfers.save([{ transfer: ended, record: record(ended, 'target-failed') }])).toBe('saved');
      expect(await s.transfers.create(opening(second), { idempotencyKey: null, requestFingerprint: 'y' })).toEqual({
        outcome: 'created',
      });
    });

    it('skips a version not newer than the stored one, so a retried write is harmless', async () => {
      const t = transfer();
      await s.transfers.create(opening(t), { idempotencyKey: null, requestFingerprint: 'x' });
      const v2 = { ...t, state: 'stub-stored' as const, version: 2 };
      expect(await s.transfers.save([{ transfer: v2, record: record(v2, 'stub-stored') }])).toBe('saved');
      expect(await s.transfers.save([{ transfer: v2, record: record(v2, 'stub-stored') }])).toBe('stale');
      expect(await s.transfers.save([{ transfer: t, record: record(t) }])).toBe('stale');
      expect((await s.transfers.get(t.id))?.version).toBe(2);
      expect((await s.transfers.auditTrail(t.id)).map((r) => r.event)).toEqual(['created', 'stub-stored']);
      expect((await publishedFor(s, t.id)).map((e) => e.event)).toEqual(['created', 'stub-stored']);
    });

    it('reads back each version whole, whichever of its fields changed', async () => {
      const routing: TransferRouting = {
        basis: 'unlisted', requestedTo: '110', categoryCode: '0301', categoryName: null, listedOwner: null,
        overrideReason: null, danger: false, harassment: null, redirect: null, nuisance: null,
      };
      const t = transfer({ routing });
      await s.transfers.create(opening(t), { idempotencyKey: null, requestFingerprint: 'w' });
      expect(await s.transfers.get(t.id)).toEqual(t);
      // What a transition changes, then the routing decision amended, then fields no transition
      // changes today: each version is read back as it was saved, nothing of it kept from before.
      const versions: Transfer[] = [
        { ...t, state: 'dialing', targetLegId: 'leg-b', version: 2, updatedAt: '2026-11-23T08:00:01.000Z' },
        { ...t, state: 'dialing', targetLegId: 'leg-b', version: 3, routing: { ...routing, nuisance: { flagged: null, recentCalls: 2, repeated: false } } },
        { ...t, state: 'failed', targetLegId: 'leg-b', version: 4, agent: { ...t.agent, legId: 'leg-a' }, failure: { reason: 'busy', cause: 'USER_BUSY' } },
        { ...t, state: 'failed', version: 5, routing: undefined },
      ];
      for (const v of versions) {
        expect(await s.transfers.save([{ transfer: v, record: record(v, 'dial-started') }])).toBe('saved');
        expect(await s.transfers.get(v.id)).toEqual(v);
      }
    });

    it('stores a transfer it never saw when a deferred write arrives, and takes the call lock', async () => {
      const t = transfer({ state: 'dialing', version: 3 });
      expect(await s.transfers.save([{ transfer: t, record: record(t, 'dial-started') }])).toBe('saved');
      expect(await s.transfers.get(t.id)).toEqual(t);
      const other = transfer({ citizenLeg: t.citizenLeg });
      expect((await s.transfers.create(opening(other), { idempotencyKey: null, requestFingerprint: 'z' })).outcome).toBe('call-busy');
    });

    it('lists live transfers oldest first, and not ended ones', async () => {
      const before = await s.transfers.listLive();
      const older = transfer({ createdAt: '2026-11-23T07:00:00.000Z' });
      const newer = transfer({ createdAt: '2026-11-23T07:00:01.000Z' });
      for (const t of [newer, older]) await s.transfers.create(opening(t), { idempotencyKey: null, requestFingerprint: 'l' });
      const live = (await s.transfers.listLive()).filter((t) => !before.some((b) => b.id === t.id));
      expect(live.map((t) => t.id)).toEqual([older.id, newer.id]);
      const done = { ...older, state: 'completed' as const, version: 2 };
      await s.transfers.save([{ transfer: done, record: record(done, 'party-left') }]);
      expect((await s.transfers.listLive()).some((t) => t.id === older.id)).toBe(false);
    });

    it('gives every live id, past the 1,000 a supervisor is first shown, and not ended ones', async () => {
      const before = new Set(await s.transfers.liveIds());
      const made = Array.from({ length: 1_005 }, (_, i) =>
        transfer({ createdAt: new Date(Date.parse('2026-11-23T08:00:00.000Z') + i).toISOString() }),
      );
      await Promise.all(made.map((t) => s.transfers.create(opening(t), { idempotencyKey: null, requestFingerprint: 'i' })));
      const ended = { ...made[3]!, state: 'completed' as const, version: 2 };
      await s.transfers.save([{ transfer: ended, record: record(ended, 'party-left') }]);
      const ids = (await s.transfers.liveIds()).filter((id) => !before.has(id));
      expect(ids).toEqual(made.filter((t) => t.id !== ended.id).map((t) => t.id));
      expect(await s.transfers.listLive()).toHaveLength(LIVE_LIST_CAP);
    });

    it('caps the audit trail at 200 records', async () => {
      const t = transfer();
      await s.transfers.create(opening(t), { idempotencyKey: null, requestFingerprint: 'c' });
      for (let v = 2; v <= 230; v += 1) {
        const next = { ...t, state: 'ringing' as const, version: v };
        await s.transfers.save([{ transfer: next, record: record(next, 'target-ringing') }]);
      }
      const trail = await s.transfers.auditTrail(t.id);
      expect(trail).toHaveLength(200);
      expect(trail.at(-1)?.version).toBe(230);
    });
  });
}

contract('memory', async () => {
  const tickets = new MemoryTicketStore({ now: () => new Date() });
  const bus = new MemoryEventBus();
  const events: BusEvent[] = [];
  bus.subscribe((event) => events.push(event));
  return { tickets, transfers: new MemoryTransferStore(tickets, bus), published: async () => [...events] };
});

let server: RedisServer;
let redis: Redis;
beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, { commandTimeoutMs: 1000, connectTimeoutMs: 1000 });
  await new Promise<void>((resolve) => redis.once('ready', () => resolve()));
});
afterAll(async () => {
  await redis.quit();
  await server.stop();
});

contract('redis', async () => {
  const keys = redisKeys(`c${randomUUID().slice(0, 6)}`);
  return {
    tickets: new RedisTicketStore(redis, keys),
    transfers: new RedisTransferStore(redis, keys, {
      transferTtlSeconds: 600,
      idempotencyTtlSeconds: 600,
      feedLog: { key: keys.feedLog, maxLength: 10_000 },
    }),
    // Read as RedisStreamEventBus reads the stream.
    published: async () =>
      (await redis.xrange(keys.feedLog, '-', '+')).map(([, fields]) => eventOfEntry(fields) ?? expect.fail(`an entry the bus cannot read: ${fields.join(' ')}`)),
  };
});

describe('redis ticket store', () => {
  it('lets a stub expire after its TTL', async () => {
    const tickets = new RedisTicketStore(redis, redisKeys('ttl'));
    await tickets.put({ ...stub, ticketId: 'GD-ttl' }, 1);
    expect(await tickets.get('GD-ttl')).not.toBeNull();
    await new Promise((r) => setTimeout(r, 1100));
    expect(await tickets.get('GD-ttl')).toBeNull();
  });
});

describe('redis transfer store', () => {
  /** A store on keys of its own, its feed stream capped at 100. */
  const freshStore = (prefix: string) => {
    const keys = redisKeys(`${prefix}${randomUUID().slice(0, 6)}`);
    const store = new RedisTransferStore(redis, keys, {
      transferTtlSeconds: 600,
      idempotencyTtlSeconds: 600,
      feedLog: { key: keys.feedLog, maxLength: 100 },
    });
    return { keys, store };
  };

  it("takes the creator's lease in the create itself, and none on a replay or a busy call", async () => {
    const { keys, store } = freshStore('l');
    const claim = (t: Transfer) => ({ key: `${keys.leasePrefix}${t.id}`, holderId: 'svc-a', ttlMs: 5000 });
    const first = transfer();
    const made = await store.create(opening(first), { idempotencyKey: 'k-lease', requestFingerprint: 'f', lease: claim(first) });
    expect(made.outcome).toBe('created');
    expect(await redis.get(`${keys.leasePrefix}${first.id}`)).toBe('svc-a');
    const ttl = await redis.pttl(`${keys.leasePrefix}${first.id}`);
    expect(ttl).toBeGreaterThan(4000);
    expect(ttl).toBeLessThanOrEqual(5000);

    const replayed = transfer();
    const again = await store.create(opening(replayed), { idempotencyKey: 'k-lease', requestFingerprint: 'f', lease: claim(replayed) });
    expect(again.outcome).toBe('replay');
    const sameCall = transfer({ citizenLeg: first.citizenLeg });
    const busy = await store.create(opening(sameCall), { idempotencyKey: null, requestFingerprint: 'g', lease: claim(sameCall) });
    expect(busy.outcome).toBe('call-busy');
    expect(await redis.exists(`${keys.leasePrefix}${replayed.id}`, `${keys.leasePrefix}${sameCall.id}`)).toBe(0);
    // Without a claim (one instance, no leases) no lease key is written.
    const alone = transfer();
    await store.create(opening(alone), { idempotencyKey: null, requestFingerprint: 'h' });
    expect(await redis.exists(`${keys.leasePrefix}${alone.id}`)).toBe(0);
  });

  /** What Redis has appended to its append-only file so far, in bytes. */
  const appendedBytes = async () => Number(/aof_current_size:(\d+)/.exec(await redis.info('persistence'))?.[1]);

  it('appends what a transition changed to the append-only file, not the whole transfer again', async () => {
    const { store } = freshStore('a');
    const t = transfer({ agent: { agentId: 'A1', seatId: 'S1', legId: randomUUID() } });
    await store.create(opening(t), { idempotencyKey: null, requestFingerprint: 'a' });
    const ringing = { ...t, state: 'ringing' as const, targetLegId: randomUUID(), version: 2, updatedAt: '2026-11-23T08:00:02.000Z' };
    const before = await appendedBytes();
    await store.save([{ transfer: ringing, record: record(ringing, 'target-ringing') }]);
    const appended = (await appendedBytes()) - before;
    // The audit record (without the transferId its key names) and the feed's entry are appended whole;
    // beside them, the transfer's changed fields only. Writing the whole transfer again appended more
    // than it alone.
    const { transferId: _named, ...stored } = record(ringing, 'target-ringing');
    const recordAndEntry = JSON.stringify(stored).length + transitionEntryValue(ringing, record(ringing, 'target-ringing')).length;
    expect(appended - recordAndEntry).toBeLessThan(JSON.stringify(ringing).length);
    expect(await store.get(t.id)).toEqual(ringing);
  });

  it('keeps a transfer for its TTL from when it is stored, and again from when it ends', async () => {
    const keys = redisKeys(`t${randomUUID().slice(0, 6)}`);
    const store = new RedisTransferStore(redis, keys, { transferTtlSeconds: 3, idempotencyTtlSeconds: 60, feedLog: { key: keys.feedLog, maxLength: 100 } });
    const t = transfer();
    await store.create(opening(t), { idempotencyKey: null, requestFingerprint: 't' });
    expect(await redis.pttl(keys.transfer(t.id))).toBeGreaterThan(2000);
    await new Promise((r) => setTimeout(r, 1200));
    const ended = { ...t, state: 'cancelled' as const, endedBy: 'agent' as const, version: 2 };
    await store.save([{ transfer: ended, record: record(ended, 'cancel-requested') }]);
    for (const key of [keys.transfer(t.id), keys.audit(t.id)]) expect(await redis.pttl(key)).toBeGreaterThan(2500);
  });

  it('reads, lists and saves a transfer stored in the earlier form, one JSON string', async () => {
    const { keys, store } = freshStore('e');
    const t = transfer({ state: 'ringing', targetLegId: 'leg-b', version: 4 });
    await redis.set(keys.transfer(t.id), JSON.stringify(t), 'EX', 600);
    await redis.zadd(keys.live, Date.parse(t.createdAt), t.id);
    expect(await store.get(t.id)).toEqual(t);
    expect(await store.listLive()).toEqual([t]);
    expect(await store.save([{ transfer: t, record: record(t, 'target-ringing') }])).toBe('stale');
    const answered = { ...t, state: 'answered' as const, version: 5 };
    expect(await store.save([{ transfer: answered, record: record(answered, 'target-answered') }])).toBe('saved');
    expect(await store.get(t.id)).toEqual(answered);
    expect(await redis.type(keys.transfer(t.id))).toBe('hash');
    expect(await redis.ttl(keys.transfer(t.id))).toBeGreaterThan(590);
  });

  it('stores audit records without the transferId their key names, and reads those of the earlier form that carry it', async () => {
    const { keys, store } = freshStore('r');
    const t = transfer();
    await store.create(opening(t), { idempotencyKey: null, requestFingerprint: 'r' });
    const stored = (await redis.lrange(keys.audit(t.id), 0, -1)).map((raw) => JSON.parse(raw) as Record<string, unknown>);
    expect(stored.length).toBeGreaterThan(0);
    for (const entry of stored) expect(entry).not.toHaveProperty('transferId');
    // An instance from before the change appended this one.
    const ringing = { ...t, state: 'ringing' as const, version: t.version + 1 };
    await redis.rpush(keys.audit(t.id), JSON.stringify(record(ringing, 'target-ringing')));
    const trail = await store.auditTrail(t.id);
    expect(trail).toHaveLength(stored.length + 1);
    expect(trail.every((r) => r.transferId === t.id)).toBe(true);
    expect(trail.at(-1)).toEqual(record(ringing, 'target-ringing'));
  });

  it('drops from the live set a transfer whose key expired without ending (its instance crashed)', async () => {
    const { keys, store } = freshStore('x');
    const [kept, crashed] = [transfer(), transfer()];
    for (const t of [kept, crashed]) await store.create(opening(t), { idempotencyKey: null, requestFingerprint: 'x' });
    await redis.del(keys.transfer(crashed.id));
    expect(await store.liveIds()).toEqual([kept.id]);
    expect(await redis.zrange(keys.live, '0', '-1')).toEqual([kept.id]);
  });

  it('walks every live id page by page when crashed ones are dropped on the way', async () => {
    const { keys, store } = freshStore('x');
    const made = Array.from({ length: 650 }, (_, i) =>
      transfer({ createdAt: new Date(Date.parse('2026-11-23T08:00:00.000Z') + i).toISOString() }),
    );
    await Promise.all(made.map((t) => store.create(opening(t), { idempotencyKey: null, requestFingerprint: 'p' })));
    // Every third one crashed, and a whole page's worth in a row: each page drops ids, one drops all.
    const crashed = made.filter((_, i) => i % 3 === 0 || (i >= 300 && i < 520));
    await redis.del(...crashed.map((t) => keys.transfer(t.id)));
    const live = made.filter((t) => !crashed.includes(t)).map((t) => t.id);
    expect(await store.liveIds()).toEqual(live);
    expect(await redis.zrange(keys.live, '0', '-1')).toEqual(live);
  });
});

describe('memory ticket store', () => {
  it('lets a stub expire after its TTL', async () => {
    let now = Date.parse('2026-11-23T08:00:00Z');
    const tickets = new MemoryTicketStore({ now: () => new Date(now) });
    await tickets.put(stub, 60);
    now += 59_000;
    expect(await tickets.get(stub.ticketId)).not.toBeNull();
    now += 1_000;
    expect(await tickets.get(stub.ticketId)).toBeNull();
  });
});

describe('memory transfer store', () => {
  it('stores nothing and gives back the call lock and the key when the stub cannot be stored', async () => {
    let down = true;
    const inner = new MemoryTicketStore({ now: () => new Date() });
    const tickets: TicketStore = {
      put: async (s, ttl) => (down ? Promise.reject(new Error('ticket store down')) : inner.put(s, ttl)),
      get: async (id) => inner.get(id),
    };
    const store = new MemoryTransferStore(tickets, new MemoryEventBus());
    const t = transfer();
    await expect(store.create(opening(t), { idempotencyKey: 'k1', requestFingerprint: 'm' })).rejects.toThrow('ticket store down');
    expect(await store.get(t.id)).toBeNull();
    down = false;
    const retry = transfer({ citizenLeg: t.citizenLeg });
    expect(await store.create(opening(retry), { idempotencyKey: 'k1', requestFingerprint: 'm' })).toEqual({ outcome: 'created' });
    expect(await inner.get(retry.ticketId)).not.toBeNull();
  });
});

describe('memory stores stay bounded', () => {
  it('keep at most the configured number of ended transfers, the newest', async () => {
    const store = new MemoryTransferStore(new MemoryTicketStore({ now: () => new Date() }), new MemoryEventBus(), 3);
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const t = transfer();
      ids.push(t.id);
      await store.create(opening(t), { idempotencyKey: null, requestFingerprint: 'm' });
      const done = { ...t, state: 'completed' as const, version: 2 };
      await store.save([{ transfer: done, record: record(done, 'party-left') }]);
    }
    const live = transfer();
    await store.create(opening(live), { idempotencyKey: null, requestFingerprint: 'm' });
    expect(store.size).toBe(4);
    expect(await store.get(ids[0]!)).toBeNull();
    expect((await store.get(ids[4]!))?.state).toBe('completed');
    expect(await store.get(live.id)).not.toBeNull();
  });

  it('sweep expired ticket stubs as new ones arrive', async () => {
    let now = Date.parse('2026-11-23T08:00:00Z');
    const tickets = new MemoryTicketStore({ now: () => new Date(now) });
    for (let i = 0; i < 999; i += 1) await tickets.put({ ...stub, ticketId: `GD-old-${i}` }, 60);
    now += 61_000;
    await tickets.put({ ...stub, ticketId: 'GD-new' }, 60);
    expect(tickets.size).toBe(1);
  });
});
