import { describe, expect, it } from 'vitest';
import { countOf, dayOf, MemoryDayStats } from '../../src/feed/day-stats.js';
import { originAllowed } from '../../src/feed/feed-plugin.js';
import { LocalFeedLog } from '../../src/feed/local-feed-log.js';
import { ClientMessageSchema } from '../../src/feed/protocol.js';
import { MemoryEventBus } from '../../src/adapters/memory/memory-event-bus.js';
import type { TransitionRecord } from '../../src/ports.js';

const record = (
  from: TransitionRecord['from'],
  to: TransitionRecord['to'],
  event: TransitionRecord['event'],
): TransitionRecord => ({
  transferId: 't1',
  at: '2026-11-23T08:00:00.000Z',
  from,
  to,
  event,
  version: 2,
});

describe('the day of the counts', () => {
  it('is the calendar day in the configured zone: 16:30 UTC is already the next day in Beijing', () => {
    expect(dayOf(new Date('2026-11-23T16:30:00Z'), 'Asia/Shanghai')).toBe('2026-11-24');
    expect(dayOf(new Date('2026-11-23T15:59:59Z'), 'Asia/Shanghai')).toBe('2026-11-23');
    expect(dayOf(new Date('2026-11-23T16:30:00Z'), 'UTC')).toBe('2026-11-23');
  });

  it('turns over at midnight to the millisecond, asked again and again around it', () => {
    for (let i = 0; i < 3; i += 1) {
      expect(dayOf(new Date('2026-11-23T15:59:59.999Z'), 'Asia/Shanghai')).toBe('2026-11-23');
      expect(dayOf(new Date('2026-11-23T16:00:00.000Z'), 'Asia/Shanghai')).toBe('2026-11-24');
      expect(dayOf(new Date('2026-11-23T16:00:00.000Z'), 'America/St_Johns')).toBe('2026-11-23');
    }
  });

  it.each([
    [record(null, 'requested', 'created'), 'requested'],
    [record('answered', 'bridged', 'bridged'), 'connected'],
    [record('answered', 'conferenced', 'conference-joined'), 'connected'],
    [record('conferenced', 'bridged', 'party-left'), null],
    [record('bridged', 'bridged', 'party-left'), null],
    [record('ringing', 'failed', 'target-failed'), 'failed'],
    [record('requested', 'rejected', 'stub-failed'), 'failed'],
    [record('ringing', 'cancelled', 'cancel-requested'), 'cancelled'],
    [record('dialing', 'ringing', 'target-ringing'), null],
  ])('counts %o as %s', (r, expected) => {
    expect(countOf(r)).toBe(expected);
  });

  it('counts a transfer once however many instances record it', async () => {
    const stats = new MemoryDayStats();
    await stats.record('2026-11-23', 'requested', 't1', null);
    await stats.record('2026-11-23', 'requested', 't1', null);
    await stats.record('2026-11-23', 'requested', 't2', null);
    expect((await stats.read('2026-11-23')).requested).toBe(2);
    expect((await stats.read('2026-11-24')).requested).toBe(0);
  });
});

describe('the Origin check', () => {
  it("lets in the service's own pages and configured origins, and nothing else", () => {
    expect(originAllowed('http://linkage.example:8080', 'linkage.example:8080', [])).toBe(true);
    expect(originAllowed('https://wall.example', 'linkage.example', ['https://wall.example'])).toBe(true);
    expect(originAllowed('https://evil.example', 'linkage.example', ['https://wall.example'])).toBe(false);
    expect(originAllowed('null', 'linkage.example', [])).toBe(false);
  });
});

describe('the local feed log', () => {
  it('replays what came after a seq it keeps, and refuses one it no longer keeps', async () => {
    const bus = new MemoryEventBus();
    const log = new LocalFeedLog(bus, 3);
    const seqs: string[] = [];
    log.follow((e) => seqs.push(e.seq));
    for (let i = 0; i < 5; i += 1)
      await bus.publish({ kind: 'store', healthy: true, detail: String(i), at: '' });
    const [, , s3, s4, s5] = seqs as [string, string, string, string, string];
    expect((await log.since(s3, s5, 10))?.map((e) => e.seq)).toEqual([s4, s5]);
    expect(await log.since(seqs[0] as string, s5, 10)).toBeNull();
    expect(await log.since(s3, s5, 1)).toBeNull(); // more than the replay limit: resync
    expect(await log.head()).toBe(s5);
  });
});

describe('client messages', () => {
  it('are refused when unknown, versioned otherwise, or carrying extra fields', () => {
    expect(ClientMessageSchema.safeParse({ v: 1, type: 'subscribe' }).success).toBe(true);
    expect(ClientMessageSchema.safeParse({ v: 2, type: 'subscribe' }).success).toBe(false);
    expect(ClientMessageSchema.safeParse({ v: 1, type: 'subscribe', extra: 1 }).success).toBe(false);
    expect(ClientMessageSchema.safeParse({ v: 1, type: 'publish' }).success).toBe(false);
    expect(
      ClientMessageSchema.safeParse({ v: 1, type: 'subscribe', seat: { desk: '110', seatId: 'S 1' } })
        .success,
    ).toBe(false);
  });
});

describe('the feed configuration', () => {
  it('takes its defaults from config/default.json and the allowed Origins from FEED_ALLOWED_ORIGINS', async () => {
    const { loadConfig } = await import('../../src/config.js');
    const defaultsPath = new URL('../../config/default.json', import.meta.url).pathname;
    const config = loadConfig({
      defaultsPath,
      env: { FEED_ALLOWED_ORIGINS: 'https://wall.example, https://ops.example' },
    });
    expect(config.feed.allowedOrigins).toEqual(['https://wall.example', 'https://ops.example']);
    expect(config.feed).toMatchObject({
      maxPayloadBytes: 4096,
      heartbeatMs: 15000,
      timeZone: 'Asia/Shanghai',
    });
    expect(() => loadConfig({ defaultsPath, env: { FEED_ALLOWED_ORIGINS: 'wall.example' } })).toThrow(
      /feed\.allowedOrigins\.0/,
    );
  });
});

describe("the wall's and the screen pop's nuisance label", () => {
  it('names the flag, else repeated calling with their count, else nothing', async () => {
    // The pages' own module (browser JavaScript, no DOM needed for this function; it has no types).
    // @ts-expect-error TS7016: a browser script without a declaration file
    const { nuisanceLabel } = (await import('../../src/feed/public/feed-client.js')) as {
      nuisanceLabel: (mark: unknown) => string | null;
    };
    expect(nuisanceLabel({ flagged: 'threatening', recentCalls: 1, repeated: false })).toBe('⚠ 扬言恐吓 threatening');
    expect(nuisanceLabel({ flagged: 'repeated', recentCalls: 9, repeated: true })).toBe('⚠ 反复滋扰 repeated');
    expect(nuisanceLabel({ flagged: null, recentCalls: 4, repeated: true })).toBe('⚠ 反复来电 calls again and again (4)');
    expect(nuisanceLabel({ flagged: null, recentCalls: 1, repeated: false })).toBeNull();
    expect(nuisanceLabel(null)).toBeNull();
  });
});
