// One contract suite per port, against every adapter: nuisance flags (memory, real Redis) and call
// records (memory, real PostgreSQL).
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryNuisanceStore } from '../../src/adapters/memory/memory-nuisance-store.js';
import { policyRedisKeys } from '../../src/adapters/redis/keys.js';
import { RedisNuisanceStore } from '../../src/adapters/redis/redis-nuisance-store.js';
import type { Transfer } from '../../src/domain/transfer.js';
import type { NuisanceFlag, NuisanceStore } from '../../src/policy/nuisance.js';
import type { TransitionRecord } from '../../src/ports.js';
import type { CallRecordStore, TicketFeedback } from '../../src/records/call-record.js';
import { MemoryCallRecords } from '../../src/records/memory-call-records.js';
import { PostgresCallRecords } from '../../src/records/postgres-call-records.js';
import { startPostgres, type PostgresServer } from '../support/postgres-server.js';
import { aTransfer } from '../support/transfer-fixture.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

let redisServer: RedisServer;
let redis: Redis;
let pgServer: PostgresServer;
let postgres: PostgresCallRecords;

beforeAll(async () => {
  [redisServer, pgServer] = await Promise.all([startRedis(), startPostgres()]);
  redis = new Redis(redisServer.url, { lazyConnect: false });
  postgres = new PostgresCallRecords({ connectionString: pgServer.url });
  await postgres.migrate();
}, 30_000);
afterAll(async () => {
  await redis?.quit();
  await postgres?.close();
  await Promise.allSettled([redisServer?.stop(), pgServer?.stop()]);
});

const nuisanceAdapters: [string, () => NuisanceStore][] = [
  ['memory', () => new MemoryNuisanceStore()],
  ['redis', () => new RedisNuisanceStore(redis, policyRedisKeys(`n${randomUUID().slice(0, 8)}`))],
];

describe.each(nuisanceAdapters)('NuisanceStore contract (%s)', (_name, make) => {
  const t0 = new Date('2026-11-23T08:00:00.000Z');
  const flag = (over: Partial<NuisanceFlag> = {}): NuisanceFlag => ({
    numberHash: 'h1',
    masked: '138****8000',
    kind: 'malicious',
    note: null,
    flaggedBy: 'agent-1',
    flaggedAt: t0.toISOString(),
    expiresAt: new Date(Date.now() + 60_000).toISOString(),
    ...over,
  });

  it('when a number is flagged, reads the flag back and lists it; unflagging removes it', async () => {
    const store = make();
    await store.flag(flag());
    expect(await store.get('h1', new Date())).toMatchObject({ kind: 'malicious', masked: '138****8000' });
    expect((await store.list(new Date(), 10)).map((f) => f.numberHash)).toEqual(['h1']);
    expect(await store.unflag('h1')).toBe(true);
    expect(await store.get('h1', new Date())).toBeNull();
    expect(await store.unflag('h1')).toBe(false);
  });

  it('a flag past its expiry is gone', async () => {
    const store = make();
    await store.flag(flag({ numberHash: 'h2', expiresAt: new Date(Date.now() + 300).toISOString() }));
    expect(await store.get('h2', new Date())).not.toBeNull();
    await new Promise((r) => setTimeout(r, 400));
    expect(await store.get('h2', new Date())).toBeNull();
    expect(await store.list(new Date(), 10)).toEqual([]);
  });

  it('counts calls per number within the window only', async () => {
    const store = make();
    const at = (s: number) => new Date(t0.getTime() + s * 1000);
    expect(await store.countCall('h3', at(0), 60)).toEqual({ flag: null, recentCalls: 1 });
    expect((await store.countCall('h3', at(10), 60)).recentCalls).toBe(2);
    expect((await store.countCall('h4', at(10), 60)).recentCalls).toBe(1);
    expect((await store.countCall('h3', at(65), 60)).recentCalls).toBe(2); // the first call left the window
    expect(await store.recentCalls('h3', at(200), 60)).toBe(0);
  });

  it("counts a call and answers with the number's flag, until the flag expires", async () => {
    const store = make();
    const expiresAt = new Date(Date.now() + 300);
    await store.flag(flag({ numberHash: 'h5', kind: 'threatening', expiresAt: expiresAt.toISOString() }));
    expect(await store.countCall('h5', new Date(), 60)).toEqual({
      flag: expect.objectContaining({ numberHash: 'h5', kind: 'threatening', masked: '138****8000' }),
      recentCalls: 1,
    });
    expect(await store.countCall('h5', expiresAt, 60)).toEqual({ flag: null, recentCalls: 2 });
    await new Promise((r) => setTimeout(r, 400));
    expect(await store.countCall('h5', new Date(), 60)).toEqual({ flag: null, recentCalls: 3 });
  });
});

const t = '2026-11-23T08:00:00.000Z';
function transfer(over: Partial<Transfer> = {}): Transfer {
  return aTransfer({
    citizenLeg: { switchId: 's', legId: randomUUID() },
    target: { desk: '110', number: '110', trunks: ['a', 'b'] },
    createdAt: t,
    updatedAt: t,
    routing: {
      basis: 'list', requestedTo: '110', categoryCode: '1.02', categoryName: '治安类警情', listedOwner: '110',
      overrideReason: null, danger: false, harassment: null, redirect: null, nuisance: null,
    },
    ...over,
  });
}
const secs = (s: number) => new Date(Date.parse(t) + s * 1000).toISOString();

/** Plays a transfer through the given states, one transition each, as the service publishes them. */
async function play(store: CallRecordStore, base: Transfer, steps: [Transfer['state'], TransitionRecord['event'], number][]) {
  let prev: Transfer['state'] | null = null;
  let current = base;
  for (const [i, [state, event, at]] of steps.entries()) {
    current = { ...current, state, version: i + 1, updatedAt: secs(at), endedBy: state === 'completed' ? 'citizen' : null };
    await store.recordTransition(current, { transferId: base.id, at: secs(at), from: prev, to: state, event, version: i + 1 });
    prev = state;
  }
  return current;
}

const recordAdapters: [string, () => CallRecordStore][] = [
  ['memory', () => new MemoryCallRecords()],
  ['postgres', () => postgres],
];

describe('call records in memory', () => {
  it('keeps at most its cap, dropping the oldest records with their transitions', async () => {
    const store = new MemoryCallRecords(3);
    const bases = [1, 2, 3, 4, 5].map((i) => transfer({ createdAt: secs(i), updatedAt: secs(i) }));
    for (const base of bases) await play(store, base, [['requested', 'created', 0], ['dialing', 'dial-started', 1]]);
    const kept = await Promise.all(bases.map(async (b) => (await store.get(b.id))?.transitions.length ?? null));
    expect(kept).toEqual([null, null, 2, 2, 2]);
    // A later transition of a kept record does not make it newer than it is.
    await store.recordTransition({ ...bases[2]!, state: 'ringing', version: 3 }, { transferId: bases[2]!.id, at: secs(9), from: 'dialing', to: 'ringing', event: 'target-ringing', version: 3 });
    await play(store, transfer({ createdAt: secs(6), updatedAt: secs(6) }), [['requested', 'created', 0]]);
    expect(await store.get(bases[2]!.id)).toBeNull();
    expect(await store.get(bases[3]!.id)).not.toBeNull();
  });
});

describe.each(recordAdapters)('CallRecordStore contract (%s)', (_name, make) => {
  it('keeps every transition with its time, the outcome, the time to connect and the trunk fallbacks', async () => {
    const store = make();
    const base = transfer();
    await play(store, base, [
      ['requested', 'created', 0], ['stub-stored', 'stub-stored', 0], ['dialing', 'dial-started', 1],
      ['dialing', 'target-failed', 3], ['ringing', 'target-ringing', 4], ['answered', 'target-answered', 9],
      ['bridged', 'bridged', 9], ['completed', 'party-left', 120],
    ]);
    const rec = await store.get(base.id);
    expect(rec).toMatchObject({
      outcome: 'connected', state: 'completed', trunkFallbacks: 1, connectMs: 9000, callerId: '138****8000',
      owner: { desk: '110', basis: 'taken-by-target' }, categoryCode: '1.02',
    });
    expect(rec?.transitions.map((x) => x.to)).toEqual(['requested', 'stub-stored', 'dialing', 'dialing', 'ringing', 'answered', 'bridged', 'completed']);
    expect(JSON.stringify(rec)).not.toContain('13800138000');
  });

  it('a transition written twice changes nothing', async () => {
    const store = make();
    const base = transfer();
    await play(store, base, [['requested', 'created', 0], ['dialing', 'target-failed', 2]]);
    await store.recordTransition({ ...base, state: 'dialing', version: 2 }, { transferId: base.id, at: secs(2), from: 'requested', to: 'dialing', event: 'target-failed', version: 2 });
    const rec = await store.get(base.id);
    expect(rec?.trunkFallbacks).toBe(1);
    expect(rec?.transitions).toHaveLength(2);
    // So does the last transition of a transfer that has ended, written again.
    const ended = await play(store, transfer(), [['requested', 'created', 0], ['cancelled', 'cancel-requested', 1]]);
    await store.recordTransition(ended, { transferId: ended.id, at: secs(1), from: 'requested', to: 'cancelled', event: 'cancel-requested', version: 2 });
    expect((await store.get(ended.id))?.transitions.map((x) => x.to)).toEqual(['requested', 'cancelled']);
  });

  it('a three-way that ends without the desk taking it stays with the first receiver (首接负责制)', async () => {
    const store = make();
    const base = transfer({ mode: 'three-way', firstReceiver: '12345' });
    await play(store, base, [
      ['requested', 'created', 0], ['dialing', 'dial-started', 1], ['answered', 'target-answered', 5],
      ['conferenced', 'conference-joined', 5], ['completed', 'party-left', 60],
    ]);
    expect(await store.get(base.id)).toMatchObject({ outcome: 'connected', owner: { desk: '12345', basis: 'first-receiver' } });
  });

  it('queries by direction, desk, state and category, newest first, in pages; lists overdue feedback', async () => {
    const store = make();
    const marker = randomUUID().slice(0, 6);
    const day = '2031-01-0';
    const made: Transfer[] = [];
    for (let i = 1; i <= 5; i += 1) {
      const base = transfer({
        createdAt: `${day}${i}T00:00:00.000Z`,
        direction: i % 2 ? { from: '12345', to: '110' } : { from: '110', to: '12345' },
        ticketId: `Q-${marker}-${i}`,
      });
      made.push(await play(store, base, [['requested', 'created', 0], ['answered', 'target-answered', 5], ['bridged', 'bridged', 6]]));
    }
    const range = { from: `${day}1T00:00:00.000Z`, to: `${day}9T00:00:00.000Z` };
    const first = await store.query({ ...range, direction: '12345-110' }, { limit: 2, cursor: null });
    expect(first.records.map((r) => r.ticketId)).toEqual([`Q-${marker}-5`, `Q-${marker}-3`]);
    const second = await store.query({ ...range, direction: '12345-110' }, { limit: 2, cursor: first.next });
    expect(second.records.map((r) => r.ticketId)).toEqual([`Q-${marker}-1`]);
    expect(second.next).toBeNull();
    expect((await store.query({ ...range, category: '1' }, { limit: 10, cursor: null })).records).toHaveLength(5);
    expect((await store.query({ ...range, category: '2' }, { limit: 10, cursor: null })).records).toHaveLength(0);
    expect((await store.query({ ...range, state: 'failed' }, { limit: 10, cursor: null })).records).toHaveLength(0);
    const streamed: string[] = [];
    for await (const r of store.stream({ ...range, desk: '110' })) streamed.push(r.ticketId);
    expect(streamed).toHaveLength(5);

    const fb: TicketFeedback = {
      ticketId: `Q-${marker}-1`, transferId: made[0]!.id, desk: '110', outcome: 'sent-back', sentBackReason: 'not-ours',
      bounceBack: true, handlingUnit: '七星分局', result: '不属于公安受理范围', handledAt: t, receivedAt: t, by: 'seat', delaySeconds: 60,
    };
    await store.addFeedback(fb);
    expect((await store.byTicket(`Q-${marker}-1`))[0]?.feedback).toEqual([fb]);
    const overdue = (await store.overdue(new Date(`${day}9T00:00:00.000Z`), 1000)).filter((r) => r.ticketId.startsWith(`Q-${marker}`));
    expect(overdue.map((r) => r.ticketId).sort()).toEqual([2, 3, 4, 5].map((i) => `Q-${marker}-${i}`));

    expect(await store.purge(new Date(`${day}3T00:00:00.000Z`))).toBeGreaterThanOrEqual(2);
    expect(await store.get(made[0]!.id)).toBeNull();
    expect(await store.get(made[2]!.id)).not.toBeNull();
  });
});
