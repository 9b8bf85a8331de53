// Call records: every transfer and redirect, its transitions with timestamps, its outcome, who owns the
// call afterwards (首接负责制) and the receiving desk's feedback (反馈回写). Kept so the linkage is
// "fully traceable, closed loop" (全程可溯、闭环运行) and "usable in bulk" (可批量应用).
// The citizen's number is kept masked only: the whole number lives in the ticket stub, which expires.
import { z } from 'zod';
import { maskNumber } from '../domain/phone-number.js';
import type { TransferRouting } from '../domain/routing-decision.js';
import { isTerminal, type Transfer, type TransferState } from '../domain/transfer.js';
import type { TransitionRecord } from '../ports.js';

export const FeedbackInputSchema = z
  .object({
    outcome: z.enum(['accepted', 'sent-back']),
    /** Why it was sent back; not-ours counts as a bounce-back (无效回流). */
    sentBackReason: z.enum(['not-ours', 'incomplete', 'duplicate', 'other']).optional(),
    handlingUnit: z.string().trim().min(1).max(100),
    result: z.string().trim().min(1).max(2000),
    handledAt: z.iso.datetime({ offset: true }),
    transferId: z.uuid().optional(),
  })
  .strict()
  .refine((f) => (f.outcome === 'sent-back') === (f.sentBackReason !== undefined), {
    message: 'sentBackReason is given exactly when the outcome is sent-back',
    path: ['sentBackReason'],
  });
export type FeedbackInput = z.infer<typeof FeedbackInputSchema>;

export interface TicketFeedback {
  readonly ticketId: string;
  readonly transferId: string;
  readonly desk: string;
  readonly outcome: 'accepted' | 'sent-back';
  readonly sentBackReason: 'not-ours' | 'incomplete' | 'duplicate' | 'other' | null;
  readonly bounceBack: boolean;
  readonly handlingUnit: string;
  readonly result: string;
  readonly handledAt: string;
  readonly receivedAt: string;
  readonly by: string;
  /** From the transfer's key press to this feedback. */
  readonly delaySeconds: number;
}

export type CallOutcome = 'connected' | 'failed' | 'cancelled' | 'rejected' | 'advised';

/** What one stored record holds; outcome and ownership are derived on read. */
export interface RecordRow {
  readonly transferId: string;
  readonly kind: 'transfer' | 'redirect';
  readonly ticketId: string;
  readonly from: string;
  readonly to: string;
  readonly mode: 'blind' | 'three-way' | 'none';
  readonly priority: 'emergency' | 'normal';
  readonly firstReceiver: string;
  readonly callerId: string;
  readonly categoryCode: string | null;
  readonly agentId: string;
  readonly state: TransferState | 'advised';
  readonly version: number;
  readonly routing: TransferRouting | null;
  readonly redirect: { readonly via: string; readonly id: string; readonly action: string; readonly numbers: readonly string[] } | null;
  readonly failure: { readonly reason: string; readonly cause: string } | null;
  readonly createdAt: string;
  readonly answeredAt: string | null;
  readonly endedAt: string | null;
  readonly updatedAt: string;
  readonly everBridged: boolean;
  readonly trunkFallbacks: number;
}

export interface CallRecord extends RecordRow {
  readonly outcome: CallOutcome | null;
  /** 首接负责制: who keeps the call once it ended. Null while it is live. */
  readonly owner: { readonly desk: string; readonly basis: 'taken-by-target' | 'first-receiver' | 'redirected' } | null;
  readonly connectMs: number | null;
  readonly transitions: readonly TransitionRecord[];
  readonly feedback: readonly TicketFeedback[];
}

/** The row as one transition leaves it; fields that accumulate are merged by mergeRow. */
export function rowOf(transfer: Transfer, transition: TransitionRecord): RecordRow {
  return {
    transferId: transfer.id,
    kind: transfer.routing?.basis === 'redirect' ? 'redirect' : 'transfer',
    ticketId: transfer.ticketId,
    from: transfer.direction.from,
    to: transfer.direction.to,
    mode: transfer.mode,
    priority: transfer.priority,
    firstReceiver: transfer.firstReceiver,
    callerId: maskNumber(transfer.presentedCallerId),
    categoryCode: transfer.routing?.categoryCode ?? null,
    agentId: transfer.agent.agentId,
    state: transfer.state,
    version: transfer.version,
    routing: transfer.routing ?? null,
    redirect: transfer.routing?.redirect ? { ...transfer.routing.redirect, numbers: [] } : null,
    failure: transfer.failure,
    createdAt: transfer.createdAt,
    answeredAt: transition.to === 'answered' ? transition.at : null,
    endedAt: isTerminal(transfer.state) ? transition.at : null,
    updatedAt: transfer.updatedAt,
    everBridged: transfer.state === 'bridged',
    trunkFallbacks: isTrunkFallback(transition) ? 1 : 0,
  };
}

/** A failed attempt that moves on to the next backup trunk (备用专线). */
export function isTrunkFallback(t: TransitionRecord): boolean {
  return t.event === 'target-failed' && t.to === 'dialing';
}

/** Merges a newer transition's row into the stored one; a stale version keeps the stored scalars. */
export function mergeRow(stored: RecordRow | null, incoming: RecordRow, transitionIsNew: boolean): RecordRow {
  if (!stored) return incoming;
  const newer = incoming.version > stored.version ? incoming : stored;
  return {
    ...newer,
    answeredAt: stored.answeredAt ?? incoming.answeredAt,
    endedAt: stored.endedAt ?? incoming.endedAt,
    everBridged: stored.everBridged || incoming.everBridged,
    trunkFallbacks: stored.trunkFallbacks + (transitionIsNew ? incoming.trunkFallbacks : 0),
  };
}

export function outcomeOf(row: RecordRow): CallOutcome | null {
  switch (row.state) {
    case 'advised':
      return 'advised';
    case 'completed':
      return row.answeredAt !== null ? 'connected' : 'failed';
    case 'failed':
      return 'failed';
    case 'cancelled':
      return 'cancelled';
    case 'rejected':
      return 'rejected';
    default:
      return row.answeredAt !== null ? 'connected' : null;
  }
}

/**
 * 首接负责制 (桂林方案 三(一), 乌鲁木齐方案 二(二)2): a call that ends without the other desk taking it stays
 * with the desk that received it first. The other desk took it when the call was bridged to it alone:
 * a blind transfer answered, or a three-way the agent left.
 */
export function ownerOf(row: RecordRow): CallRecord['owner'] {
  if (row.kind === 'redirect' && row.state === 'advised') return { desk: row.firstReceiver, basis: 'redirected' };
  if (row.everBridged) return { desk: row.to, basis: 'taken-by-target' };
  if (row.state === 'advised' || isTerminal(row.state as TransferState)) return { desk: row.firstReceiver, basis: 'first-receiver' };
  return null;
}

export function toCallRecord(row: RecordRow, transitions: readonly TransitionRecord[], feedback: readonly TicketFeedback[]): CallRecord {
  return {
    ...row,
    outcome: outcomeOf(row),
    owner: ownerOf(row),
    connectMs: row.answeredAt !== null ? Date.parse(row.answeredAt) - Date.parse(row.createdAt) : null,
    transitions: [...transitions].sort((a, b) => a.version - b.version),
    feedback,
  };
}

export const RecordFilterSchema = z
  .object({
    from: z.iso.datetime({ offset: true }).optional(),
    to: z.iso.datetime({ offset: true }).optional(),
    /** "12345-110": from one desk to the other. */
    direction: z
      .string()
      .regex(/^[0-9A-Za-z_]{2,32}-[0-9A-Za-z_]{2,32}$/, 'from-to, e.g. 12345-110')
      .optional(),
    /** Either side of the transfer. */
    desk: z.string().regex(/^[0-9A-Za-z_-]{2,32}$/).optional(),
    state: z.string().regex(/^[a-z-]{3,20}$/).optional(),
    /** A category code; its sub-categories match too. */
    category: z.string().regex(/^[0-9A-Za-z.-]{1,32}$/).optional(),
  })
  .strict();
export type RecordFilter = z.infer<typeof RecordFilterSchema>;

export function matches(row: RecordRow, f: RecordFilter): boolean {
  if (f.from !== undefined && Date.parse(row.createdAt) < Date.parse(f.from)) return false;
  if (f.to !== undefined && Date.parse(row.createdAt) >= Date.parse(f.to)) return false;
  if (f.direction !== undefined && `${row.from}-${row.to}` !== f.direction) return false;
  if (f.desk !== undefined && row.from !== f.desk && row.to !== f.desk) return false;
  if (f.state !== undefined && row.state !== f.state) return false;
  if (f.category !== undefined) {
    const c = row.categoryCode;
    if (c === null || (c !== f.category && !c.startsWith(`${f.category}.`))) return false;
  }
  return true;
}

/** Records are listed newest first; the cursor is the last one seen. */
export interface Page {
  readonly limit: number;
  readonly cursor: string | null;
}
export interface PageResult {
  readonly records: CallRecord[];
  readonly next: string | null;
}

export function encodeCursor(row: Pick<RecordRow, 'createdAt' | 'transferId'>): string {
  return Buffer.from(`${row.createdAt}|${row.transferId}`, 'utf8').toString('base64url');
}
export function decodeCursor(cursor: string): { createdAt: string; transferId: string } | null {
  const [createdAt, transferId, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (!createdAt || !transferId || rest.length > 0 || Number.isNaN(Date.parse(createdAt))) return null;
  return { createdAt, transferId };
}

/** Where call records live: PostgreSQL, or memory in the embedded default. */
export interface CallRecordStore {
  readonly durable: boolean;
  /** Idempotent: a transition seen twice changes nothing. */
  recordTransition(transfer: Transfer, transition: TransitionRecord): Promise<void>;
  /** A redirect where the caller was advised to dial another number: no call was moved. */
  recordAdvice(row: RecordRow): Promise<void>;
  addFeedback(feedback: TicketFeedback): Promise<void>;
  get(transferId: string): Promise<CallRecord | null>;
  byTicket(ticketId: string): Promise<CallRecord[]>;
  query(filter: RecordFilter, page: Page): Promise<PageResult>;
  /** Every matching record, newest first, without holding them all in memory. */
  stream(filter: RecordFilter): AsyncIterable<CallRecord>;
  /** Connected transfers created before the cutoff that no feedback came back for. */
  overdue(createdBefore: Date, limit: number): Promise<CallRecord[]>;
  /** Deletes records created before the cutoff (retention); returns how many. */
  purge(createdBefore: Date): Promise<number>;
  healthy(): Promise<{ healthy: boolean; detail: string }>;
  close(): Promise<void>;
}
