// The feed stream's entries: what one instance writes, every other must read back as it was.
import { describe, expect, it } from 'vitest';
import { decodeTransition, encodeTransition, entryOf, eventOfEntry, transitionEntryValue } from '../../src/adapters/redis/feed-stream-entry.js';
import { TRANSFER_EVENT_TYPES, TRANSFER_STATES, type Transfer } from '../../src/domain/transfer.js';
import { transitionBusEvent, type BusEvent, type TransitionBusEvent, type TransitionRecord } from '../../src/ports.js';
import { aRecord, aTransfer } from '../support/transfer-fixture.js';

const at = (t: Transfer, event: TransitionRecord['event'], extra: Partial<TransitionRecord> = {}): TransitionBusEvent =>
  transitionBusEvent(t, { ...aRecord(t, event), from: 'dialing', ...extra });

/** Transitions unlike one another in every field the entry carries. */
function variety(): TransitionBusEvent[] {
  const base = aTransfer({ updatedAt: '2026-11-23T08:00:01.234Z' });
  const events: TransitionBusEvent[] = [];
  for (const [i, state] of TRANSFER_STATES.entries()) {
    events.push(at({ ...base, state, version: i + 1 }, TRANSFER_EVENT_TYPES[i % TRANSFER_EVENT_TYPES.length]!));
  }
  const failed: Transfer = {
    ...base,
    state: 'failed',
    failure: { reason: 'trunk-down', cause: 'GATEWAY_DOWN "sw110" 对端无应答' },
    endedBy: 'target',
    trunkIndex: 1,
  };
  events.push(
    at(failed, 'target-failed', { detail: 'sw110-backup: 503' }),
    at({ ...base, direction: { from: '110', to: '12345' }, mode: 'three-way', priority: 'emergency', stubDeferred: true }, 'conference-joined'),
    at({ ...base, presentedCallerId: { kind: 'withheld' } }, 'created', { from: null }),
    at({ ...base, agent: { agentId: '张三', seatId: 'S-01', legId: 'x' }, target: { desk: '12319', number: '12319', trunks: ['a'] } }, 'dial-started'),
    at({ ...base, routing: routingWith({ flagged: 'threatening', recentCalls: 7, repeated: true }) }, 'nuisance-checked'),
    at({ ...base, routing: routingWith({ flagged: null, recentCalls: 1, repeated: false }) }, 'nuisance-checked'),
    // Times no writer of this service makes, kept as they were: no milliseconds, an offset, garbage.
    at({ ...base, createdAt: '2026-11-23T08:00:00Z', updatedAt: '2026-11-23T08:00:01Z' }, 'bridged'),
    at({ ...base, createdAt: '2026-11-23T16:00:00.000+08:00', updatedAt: '2026-11-23T08:00:00.500Z' }, 'bridged'),
    at({ ...base, updatedAt: 'not a time' }, 'bridged'),
    // A record whose own fields are not the transfer's.
    transitionBusEvent(base, { transferId: 'another', at: '2026-11-23T09:00:00.000Z', from: 'ringing', to: 'answered', event: 'target-answered', version: 99 }),
    transitionBusEvent(base, { ...aRecord(base, 'party-left'), version: base.version + 1 }),
  );
  return events;
}

function routingWith(nuisance: NonNullable<Transfer['routing']>['nuisance']): Transfer['routing'] {
  return {
    basis: 'unlisted',
    requestedTo: '110',
    categoryCode: '0301',
    categoryName: null,
    listedOwner: null,
    overrideReason: null,
    danger: false,
    harassment: null,
    redirect: null,
    nuisance,
  };
}

describe('a transition on the feed stream', () => {
  it.each(variety().map((event) => [`${event.transfer.state} / ${event.record.event}`, event] as const))('reads back as written: %s', (_, event) => {
    expect(decodeTransition(encodeTransition(event))).toEqual(event);
    const [field, value] = entryOf(event);
    expect(eventOfEntry([field, value])).toEqual(event);
  });

  it('keeps a record without detail without one, and one with detail with it', () => {
    const t = aTransfer();
    const plain = decodeTransition(encodeTransition(at(t, 'bridged')));
    expect(plain?.record).not.toHaveProperty('detail');
    expect(decodeTransition(encodeTransition(at(t, 'bridged', { detail: '' })))?.record.detail).toBe('');
  });

  it('is written by the store as the bus writes it', () => {
    const t = aTransfer({ state: 'ringing', version: 3 });
    const record = aRecord(t, 'target-ringing');
    expect(transitionEntryValue(t, record)).toBe(entryOf(transitionBusEvent(t, record))[1]);
  });

  it('takes a third of the bytes the keyed JSON took', () => {
    const t = aTransfer({ state: 'bridged', version: 8, updatedAt: '2026-11-23T08:00:00.027Z', routing: routingWith({ flagged: null, recentCalls: 1, repeated: false }) });
    const event = at(t, 'party-left', { from: 'bridged', detail: 'agent: NORMAL_CLEARING' });
    const [field, value] = entryOf(event);
    expect(field).toBe('t');
    expect(Buffer.byteLength(value)).toBeLessThan(Buffer.byteLength(JSON.stringify(event)) / 3 + 10);
  });

  it.each([
    ['not JSON', '[1,"a"'],
    ['not an array', '{"kind":"transition"}'],
    ['a later format', JSON.stringify([2, ...JSON.parse(encodeTransition(at(aTransfer(), 'bridged'))).slice(1)])],
    ['a field missing', JSON.stringify(JSON.parse(encodeTransition(at(aTransfer(), 'bridged'))).slice(0, 20))],
    ['an unknown state', encodeTransition(at(aTransfer(), 'bridged')).replace('"requested"', '"teleported"')],
    ['an unknown event', encodeTransition(at(aTransfer(), 'bridged')).replace('"bridged"', '"exploded"')],
    ['an unknown override', JSON.stringify([...JSON.parse(encodeTransition(at(aTransfer(), 'bridged'))), { colour: 'red' }])],
    ['a relative updatedAt after a createdAt that is not a number', withTimes('2026-11-23T08:00:00Z', 5)],
    ['a createdAt out of any date\'s range', withTimes(1e20, 5)],
    ['an updatedAt out of any date\'s range', withTimes(1_796_300_377_656, 1e20)],
    ['an element past the overrides', JSON.stringify([...JSON.parse(encodeTransition(at(aTransfer(), 'bridged'))), { at: 'x' }, 1])],
    ['overrides that are null', JSON.stringify([...JSON.parse(encodeTransition(at(aTransfer(), 'bridged'))), null])],
    ['overrides that are an array', JSON.stringify([...JSON.parse(encodeTransition(at(aTransfer(), 'bridged'))), ['at']])],
    ['an override named as an object\'s own property', JSON.stringify([...JSON.parse(encodeTransition(at(aTransfer(), 'bridged'))), { toString: 'x' }])],
    ['an override of the wrong type', JSON.stringify([...JSON.parse(encodeTransition(at(aTransfer(), 'bridged'))), { version: '2' }])],
    ['a desk that is no desk id', withElement(3, 'a b')],
    ['a negative trunk index', withElement(11, -1)],
    ['a version that is not an integer', withElement(17, 1.5)],
    ['a failure without its cause', withElement(14, ['busy'])],
    ['an unknown failure', withElement(14, ['bored', 'x'])],
    ['a nuisance count too large for a number', encodeTransition(at(aTransfer({ routing: routingWith({ flagged: null, recentCalls: 7, repeated: false }) }), 'nuisance-checked')).replace(',7,0]', ',1e999,0]')],
    ['a flag that is neither 0 nor 1', withElement(13, true)],
  ])('is skipped when it is %s', (_, raw) => {
    expect(decodeTransition(raw)).toBeNull();
    expect(eventOfEntry(['t', raw])).toBeNull();
  });
});

function withElement(index: number, value: unknown): string {
  const entry = JSON.parse(encodeTransition(at(aTransfer(), 'bridged'))) as unknown[];
  entry[index] = value;
  return JSON.stringify(entry);
}

function withTimes(created: number | string, updated: number | string): string {
  const entry = JSON.parse(encodeTransition(at(aTransfer(), 'bridged'))) as unknown[];
  entry[18] = created;
  entry[19] = updated;
  return JSON.stringify(entry);
}

describe('the feed stream entries of every version', () => {
  const t = aTransfer({ state: 'ringing', version: 2 });
  const record = { ...aRecord(t, 'target-ringing'), from: 'dialing' as const };
  const heard = transitionBusEvent(t, record);

  it('reads a transition as keyed JSON in field e (instances before the positional form)', () => {
    expect(eventOfEntry(['e', JSON.stringify(heard)])).toEqual(heard);
  });

  it('reads the whole transfer in field e (instances before the summary) as the transition summarised', () => {
    expect(eventOfEntry(['e', JSON.stringify({ kind: 'transfer', transfer: t, record })])).toEqual(heard);
  });

  it('writes every other event as its JSON in field e, and reads it back', () => {
    const store: BusEvent = { kind: 'store', healthy: false, detail: 'ECONNREFUSED', at: t.createdAt };
    expect(entryOf(store)).toEqual(['e', JSON.stringify(store)]);
    expect(eventOfEntry(entryOf(store))).toEqual(store);
  });

  it('finds its field wherever it is among the fields, and skips an entry with neither or not JSON', () => {
    expect(eventOfEntry(['source', 'other-writer', ...entryOf(heard)])).toEqual(heard);
    expect(eventOfEntry(['source', 'other-writer'])).toBeNull();
    expect(eventOfEntry(['e', '{not json'])).toBeNull();
    expect(eventOfEntry([])).toBeNull();
  });
});
