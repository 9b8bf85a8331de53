// Call records in memory: the embedded default without a database. Not durable, and capped so a long
// run cannot exhaust memory; /health/ready says so.
import { isTerminal, type Transfer } from '../domain/transfer.js';
import type { TransitionRecord } from '../ports.js';
import {
  decodeCursor,
  encodeCursor,
  matches,
  mergeRow,
  outcomeOf,
  rowOf,
  toCallRecord,
  type CallRecord,
  type CallRecordStore,
  type Page,
  type PageResult,
  type RecordFilter,
  type RecordRow,
  type TicketFeedback,
} from './call-record.js';

export class MemoryCallRecords implements CallRecordStore {
  readonly durable = false;
  private readonly rows = new Map<string, RecordRow>();
  /**
   * Each transfer's transitions in the order they came, one per version: an array while the transfer
   * lives, then, once it has ended, their JSON in one string. Ended transfers are nearly all of what is
   * kept, and one flat string is one object for the collector to mark and move, not a few dozen: with
   * 100,000 records a full collection took 210 ms, 60 ms with the strings (a measurement, 2026-12-02).
   */
  private readonly transitions = new Map<string, TransitionRecord[] | string>();
  private readonly feedback = new Map<string, TicketFeedback[]>();

  constructor(private readonly cap = 100_000) {}

  async recordTransition(transfer: Transfer, transition: TransitionRecord): Promise<void> {
    const kept = this.transitions.get(transfer.id);
    const seen = typeof kept === 'string' ? (JSON.parse(kept) as TransitionRecord[]) : (kept ?? []);
    // A write retried after a lost reply stores the same version again: it replaces, as a row would.
    const at = seen.findIndex((t) => t.version === transition.version);
    const isNew = at < 0;
    if (isNew) seen.push(transition);
    else seen[at] = transition;
    this.transitions.set(transfer.id, isTerminal(transfer.state) ? JSON.stringify(seen) : seen);
    this.rows.set(transfer.id, mergeRow(this.rows.get(transfer.id) ?? null, rowOf(transfer, transition), isNew));
    this.trim();
  }

  async recordAdvice(row: RecordRow): Promise<void> {
    this.rows.set(row.transferId, row);
    this.trim();
  }

  async addFeedback(feedback: TicketFeedback): Promise<void> {
    const list = this.feedback.get(feedback.transferId) ?? [];
    list.push(feedback);
    this.feedback.set(feedback.transferId, list);
  }

  async get(transferId: string): Promise<CallRecord | null> {
    const row = this.rows.get(transferId);
    return row ? this.full(row) : null;
  }

  async byTicket(ticketId: string): Promise<CallRecord[]> {
    return this.sorted()
      .filter((r) => r.ticketId === ticketId)
      .map((r) => this.full(r));
  }

  async query(filter: RecordFilter, page: Page): Promise<PageResult> {
    const after = page.cursor ? decodeCursor(page.cursor) : null;
    const rows = this.sorted().filter((r) => matches(r, filter) && (after === null || isAfter(r, after)));
    const taken = rows.slice(0, page.limit);
    const last = taken.at(-1);
    return { records: taken.map((r) => this.full(r)), next: rows.length > page.limit && last ? encodeCursor(last) : null };
  }

  async *stream(filter: RecordFilter): AsyncIterable<CallRecord> {
    for (const row of this.sorted()) if (matches(row, filter)) yield this.full(row);
  }

  async overdue(createdBefore: Date, limit: number): Promise<CallRecord[]> {
    return this.sorted()
      .filter(
        (r) =>
          r.kind === 'transfer' &&
          outcomeOf(r) === 'connected' &&
          Date.parse(r.createdAt) < createdBefore.getTime() &&
          (this.feedback.get(r.transferId)?.length ?? 0) === 0,
      )
      .reverse()
      .slice(0, limit)
      .map((r) => this.full(r));
  }

  async purge(createdBefore: Date): Promise<number> {
    let removed = 0;
    for (const row of [...this.rows.values()]) {
      if (Date.parse(row.createdAt) < createdBefore.getTime()) {
        this.drop(row.transferId);
        removed += 1;
      }
    }
    return removed;
  }

  async healthy() {
    return { healthy: true, detail: 'call records in memory (embedded default: not durable, lost on restart)' };
  }

  async close(): Promise<void> {}

  private full(row: RecordRow): CallRecord {
    return toCallRecord(row, this.transitionsOf(row.transferId), this.feedback.get(row.transferId) ?? []);
  }

  private transitionsOf(transferId: string): readonly TransitionRecord[] {
    const kept = this.transitions.get(transferId) ?? [];
    return typeof kept === 'string' ? (JSON.parse(kept) as TransitionRecord[]) : kept;
  }

  private sorted(): RecordRow[] {
    return [...this.rows.values()].sort((a, b) =>
      a.createdAt === b.createdAt ? b.transferId.localeCompare(a.transferId) : b.createdAt.localeCompare(a.createdAt),
    );
  }

  /**
   * Past the cap the oldest record goes: the first stored, since records are stored as their transfers
   * are created. Never a sort: at the cap every write trims, and sorting 100,000 rows per write stalled
   * the service for tens of milliseconds each time.
   */
  private trim(): void {
    while (this.rows.size > this.cap) {
      const oldest = this.rows.keys().next();
      if (oldest.done === true) return;
      this.drop(oldest.value);
    }
  }

  private drop(transferId: string): void {
    this.rows.delete(transferId);
    this.transitions.delete(transferId);
    this.feedback.delete(transferId);
  }
}

function isAfter(row: RecordRow, cursor: { createdAt: string; transferId: string }): boolean {
  if (row.createdAt !== cursor.createdAt) return row.createdAt < cursor.createdAt;
  return row.transferId < cursor.transferId;
}
