// Counts and failures of the day for the wall. Every instance sees every bus event, so recording is
// idempotent (a transfer id is counted once however many instances record it): sets, not counters.
import type { TransitionRecord } from '../ports.js';
import type { DayCounts, FailureSummary } from './protocol.js';

export type DayCount = 'requested' | 'connected' | 'failed' | 'cancelled';
export const DAY_COUNTS: readonly DayCount[] = ['requested', 'connected', 'failed', 'cancelled'];
export const RECENT_FAILURES = 20;

export interface DayStats {
  /** Records one counted transition; the same transfer counted twice in a day counts once. */
  record(day: string, count: DayCount, transferId: string, failure: FailureSummary | null): Promise<void>;
  read(day: string): Promise<DayCounts>;
}

/** Which count of the day a transition adds to, if any. */
export function countOf(record: TransitionRecord): DayCount | null {
  if (record.event === 'created') return 'requested';
  if ((record.to === 'bridged' || record.to === 'conferenced') && record.from === 'answered')
    return 'connected';
  if (record.to === 'failed' || record.to === 'rejected') return 'failed';
  if (record.to === 'cancelled') return 'cancelled';
  return null;
}

/** The calendar day of an instant in a time zone (the desks work on Beijing time), as YYYY-MM-DD. */
export function dayOf(at: Date, timeZone: string): string {
  // Every event asks; days turn over on whole minutes in every zone in use, so one answer per zone and
  // minute is exact, and formatting (far dearer than a comparison) runs once a minute.
  const minute = Math.floor(at.getTime() / 60_000);
  const cached = LAST_DAY.get(timeZone);
  if (cached && cached.minute === minute) return cached.day;
  let format = DAY_FORMATS.get(timeZone);
  if (!format) {
    // Building a formatter costs far more than using one: keep one per zone.
    format = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    });
    DAY_FORMATS.set(timeZone, format);
  }
  const day = format.format(at);
  LAST_DAY.set(timeZone, { minute, day });
  return day;
}
const DAY_FORMATS = new Map<string, Intl.DateTimeFormat>();
const LAST_DAY = new Map<string, { minute: number; day: string }>();

export class MemoryDayStats implements DayStats {
  private readonly days = new Map<
    string,
    { sets: Map<DayCount, Set<string>>; failures: Map<string, FailureSummary> }
  >();

  async record(
    day: string,
    count: DayCount,
    transferId: string,
    failure: FailureSummary | null,
  ): Promise<void> {
    let entry = this.days.get(day);
    if (!entry) {
      entry = { sets: new Map(DAY_COUNTS.map((c) => [c, new Set<string>()])), failures: new Map() };
      this.days.set(day, entry);
      // Keep today and yesterday only.
      for (const old of [...this.days.keys()].sort().slice(0, -2)) this.days.delete(old);
    }
    entry.sets.get(count)?.add(transferId);
    if (failure) {
      entry.failures.set(transferId, failure);
      if (entry.failures.size > 200) entry.failures.delete(entry.failures.keys().next().value as string);
    }
  }

  async read(day: string): Promise<DayCounts> {
    const entry = this.days.get(day);
    const size = (c: DayCount) => entry?.sets.get(c)?.size ?? 0;
    return {
      day,
      requested: size('requested'),
      connected: size('connected'),
      failed: size('failed'),
      cancelled: size('cancelled'),
      recentFailures: [...(entry?.failures.values() ?? [])]
        .sort((a, b) => b.at.localeCompare(a.at))
        .slice(0, RECENT_FAILURES),
    };
  }
}
