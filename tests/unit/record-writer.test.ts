// The record writer's retry rules: a records store that is away is waited for, a write it refuses is
// given up after a few tries, and stopping never hangs on a store that does not come back.
import { describe, expect, it } from 'vitest';
import type { Transfer } from '../../src/domain/transfer.js';
import type { TransitionRecord } from '../../src/ports.js';
import { MemoryCallRecords } from '../../src/records/memory-call-records.js';
import { isUnreachable, RecordWriter } from '../../src/records/record-writer.js';
import { memoryLogger } from '../support/memory-logger.js';
import { aRecord, aTransfer } from '../support/transfer-fixture.js';

const quick = { delayMs: 5, maxDelayMs: 20, refusedAttempts: 3 };
const sqlError = (code: string) => Object.assign(new Error(`sqlstate ${code}`), { code });

/** Real memory records behind a switch that makes writes fail with a chosen error. */
class FlakyRecords extends MemoryCallRecords {
  failWith: ((transfer: Transfer) => Error | null) | null = null;
  tries = 0;
  override async recordTransition(transfer: Transfer, transition: TransitionRecord): Promise<void> {
    this.tries += 1;
    const err = this.failWith?.(transfer);
    if (err) throw err;
    return super.recordTransition(transfer, transition);
  }
}

const created = (t: Transfer) => ({ kind: 'transfer' as const, transfer: t, record: aRecord(t) });

describe('which records store errors mean "away, wait"', () => {
  it.each([
    ['08006', true], // connection failure
    ['57P01', true], // administrator shutdown
    ['57P03', true], // cannot connect now (starting up)
    ['53300', true], // too many connections
    ['40001', true], // serialization failure
    ['23505', false], // unique violation
    ['22P02', false], // invalid text representation
    ['42P01', false], // undefined table
  ])('SQLSTATE %s → %s', (code, away) => expect(isUnreachable(sqlError(code))).toBe(away));

  it('takes network and pool errors, which carry no SQLSTATE, as away', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT']) expect(isUnreachable(sqlError(code)), code).toBe(true);
    expect(isUnreachable(new Error('Connection terminated unexpectedly'))).toBe(true);
  });
});

describe('the record writer', () => {
  it('waits out an outage and then stores every write, in order', async () => {
    const records = new FlakyRecords();
    const writer = new RecordWriter(records, memoryLogger().logger, quick);
    records.failWith = () => sqlError('57P01');
    const transfers = [aTransfer(), aTransfer(), aTransfer()];
    for (const t of transfers) writer.observe(created(t));
    await expect.poll(() => records.tries).toBeGreaterThan(6); // well past the tries a refused write gets
    expect(writer.pendingCount).toBe(3);
    records.failWith = null;
    await writer.flush();
    for (const t of transfers) expect((await records.get(t.id))?.state).toBe('requested');
    expect(writer.pendingCount).toBe(0);
  });

  it('gives up a write the store refuses after a few tries, counts it, and goes on with the next', async () => {
    const records = new FlakyRecords();
    const log = memoryLogger();
    const writer = new RecordWriter(records, log.logger, quick);
    const dropped: number[] = [];
    writer.onDrop((n) => dropped.push(n));
    const [refused, fine] = [aTransfer(), aTransfer()];
    records.failWith = (t) => (t.id === refused.id ? sqlError('23505') : null);
    writer.observe(created(refused));
    writer.observe(created(fine));
    await writer.flush();
    expect(records.tries).toBe(quick.refusedAttempts + 1);
    expect(dropped).toEqual([1]);
    expect(await records.get(refused.id)).toBeNull();
    expect((await records.get(fine.id))?.state).toBe('requested');
    expect(log.text()).toContain('call record write dropped');
  });

  it('on close, gives a store that stays away the deadline, then gives the writes up rather than hang', async () => {
    const records = new FlakyRecords();
    const writer = new RecordWriter(records, memoryLogger().logger, { delayMs: 10_000, maxDelayMs: 10_000, refusedAttempts: 3 });
    const dropped: number[] = [];
    writer.onDrop((n) => dropped.push(n));
    records.failWith = () => sqlError('08006');
    writer.observe(created(aTransfer()));
    writer.observe(created(aTransfer()));
    const started = Date.now();
    await writer.close(100);
    expect(Date.now() - started).toBeLessThan(2_000); // not the 10 s pause between tries
    expect(dropped).toEqual([1, 1]);
    expect(writer.pendingCount).toBe(0);
  });
});
