import { describe, expect, it } from 'vitest';
import { dayBounds, quantile, summariseDay } from '../../src/metrics/daily-summary.js';
import type { CallRecord } from '../../src/records/call-record.js';

describe('the daily summary', () => {
  it('a day in China Standard Time starts at 16:00 UTC the day before', () => {
    expect(dayBounds('2026-11-23', 480)).toEqual({ from: '2026-11-22T16:00:00.000Z', to: '2026-11-23T16:00:00.000Z' });
  });

  it('takes the nearest-rank median and p90', () => {
    const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect([quantile(ten, 0.5), quantile(ten, 0.9), quantile([], 0.5), quantile([7], 0.9)]).toEqual([5, 9, null, 7]);
  });

  it('per direction: success over ended transfers, bounce-backs over feedback, overdue past the deadline', async () => {
    const now = new Date('2026-11-23T12:00:00.000Z');
    const rec = (over: Partial<CallRecord>): CallRecord =>
      ({
        transferId: Math.random().toString(36), kind: 'transfer', from: '12345', to: '110', state: 'completed', outcome: 'connected',
        connectMs: 4000, createdAt: '2026-11-23T01:00:00.000Z', feedback: [], ...over,
      }) as CallRecord;
    const bounce = { bounceBack: true } as CallRecord['feedback'][number];
    const accepted = { bounceBack: false } as CallRecord['feedback'][number];
    const rows = [
      rec({ connectMs: 2000, feedback: [bounce] }),
      rec({ connectMs: 9000, feedback: [accepted] }),
      rec({ connectMs: 4000 }), // no feedback, created 11 h before now
      rec({ outcome: 'failed', state: 'failed', connectMs: null }),
      rec({ outcome: null, state: 'ringing', connectMs: null }), // still live: not counted as ended
      rec({ from: '110', to: '12345', connectMs: 1000 }),
    ];
    async function* stream() {
      yield* rows;
    }
    const [toDesk12345, to110] = await summariseDay(stream(), { now, deadlineHours: 8 });
    expect(to110).toMatchObject({
      direction: '12345-110', transfers: 5, connected: 3, successRate: 0.75, connectMedianMs: 4000, connectP90Ms: 9000,
      feedback: 2, bounceBacks: 1, bounceBackRate: 0.5, overdueFeedback: 1, humanAnswerRate: null,
    });
    expect(toDesk12345).toMatchObject({ direction: '110-12345', transfers: 1, successRate: 1, overdueFeedback: 1 });
  });
});
