// The figures each hotline is judged by, per day and direction (from one desk to another): transfer
// success rate, time to connect (median, p90; GB/T 33358 asks for answering within 15 s), bounce-back
// rate (无效回流), overdue feedback, and the human answer rate where the switch reports it.
import type { CallRecord } from '../records/call-record.js';

export interface DeskSummary {
  readonly direction: string;
  readonly transfers: number;
  readonly connected: number;
  readonly successRate: number | null;
  readonly connectMedianMs: number | null;
  readonly connectP90Ms: number | null;
  readonly feedback: number;
  readonly bounceBacks: number;
  readonly bounceBackRate: number | null;
  readonly overdueFeedback: number;
  readonly redirects: number;
  /** Null: no switch driver reports whether a person or a machine answered. */
  readonly humanAnswerRate: number | null;
}

export async function summariseDay(
  records: AsyncIterable<CallRecord>,
  options: { now: Date; deadlineHours: number },
): Promise<DeskSummary[]> {
  const groups = new Map<string, CallRecord[]>();
  for await (const r of records) {
    const key = `${r.from}-${r.to}`;
    const list = groups.get(key) ?? [];
    list.push(r);
    groups.set(key, list);
  }
  const cutoff = options.now.getTime() - options.deadlineHours * 3_600_000;
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([direction, list]) => {
      const transfers = list.filter((r) => r.kind === 'transfer' || r.state !== 'advised');
      const ended = transfers.filter((r) => r.outcome !== null);
      const connected = transfers.filter((r) => r.outcome === 'connected');
      const times = connected.map((r) => r.connectMs).filter((t): t is number => t !== null).sort((a, b) => a - b);
      const feedback = transfers.flatMap((r) => r.feedback);
      const bounceBacks = feedback.filter((f) => f.bounceBack).length;
      return {
        direction,
        transfers: transfers.length,
        connected: connected.length,
        successRate: ended.length > 0 ? connected.length / ended.length : null,
        connectMedianMs: quantile(times, 0.5),
        connectP90Ms: quantile(times, 0.9),
        feedback: feedback.length,
        bounceBacks,
        bounceBackRate: feedback.length > 0 ? bounceBacks / feedback.length : null,
        overdueFeedback: connected.filter((r) => r.feedback.length === 0 && Date.parse(r.createdAt) < cutoff).length,
        redirects: list.filter((r) => r.kind === 'redirect').length,
        humanAnswerRate: null,
      };
    });
}

/** Nearest-rank quantile of sorted values. */
export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1] ?? null;
}

/** The UTC bounds of a calendar day in a fixed offset (China Standard Time is +480 minutes). */
export function dayBounds(day: string, utcOffsetMinutes: number): { from: string; to: string } {
  const start = Date.parse(`${day}T00:00:00Z`) - utcOffsetMinutes * 60_000;
  return { from: new Date(start).toISOString(), to: new Date(start + 86_400_000).toISOString() };
}
