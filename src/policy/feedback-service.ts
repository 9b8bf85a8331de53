// Feedback write-back (反馈回写) closes the loop: the receiving desk posts what became of a transferred
// ticket, the sending desk reads it (API and bus), a ticket sent back as not belonging to the receiver
// counts as a bounce-back (无效回流), and tickets nobody answered for past the deadline are overdue.
import { AppError } from '../errors.js';
import type { Clock, EventBus } from '../ports.js';
import type { CallRecord, CallRecordStore, FeedbackInput, TicketFeedback } from '../records/call-record.js';

export class FeedbackService {
  constructor(
    private readonly deps: {
      records: CallRecordStore;
      bus: EventBus;
      clock: Clock;
      settings: { deadlineHours: number; desksByKey: Readonly<Record<string, readonly string[]>> };
    },
  ) {}

  async post(ticketId: string, input: FeedbackInput, by: string): Promise<TicketFeedback> {
    const record = await this.transferFor(ticketId, input.transferId);
    // Only the desk that received the call writes its outcome back: a seat of another desk could
    // otherwise close or bounce a ticket it never handled.
    const desks = this.deps.settings.desksByKey[by];
    if (desks !== undefined && !desks.includes(record.to)) {
      throw new AppError('forbidden', `${by} acts for ${desks.join(', ')}; desk ${record.to} received this transfer`, {
        transferId: record.transferId,
      });
    }
    const now = this.deps.clock.now();
    const feedback: TicketFeedback = {
      ticketId,
      transferId: record.transferId,
      desk: record.to,
      outcome: input.outcome,
      sentBackReason: input.sentBackReason ?? null,
      bounceBack: input.outcome === 'sent-back' && input.sentBackReason === 'not-ours',
      handlingUnit: input.handlingUnit,
      result: input.result,
      handledAt: new Date(input.handledAt).toISOString(),
      receivedAt: now.toISOString(),
      by,
      delaySeconds: Math.max(0, Math.round((now.getTime() - Date.parse(record.createdAt)) / 1000)),
    };
    await this.guard(() => this.deps.records.addFeedback(feedback));
    await this.deps.bus
      .publish({
        kind: 'feedback',
        ticketId,
        transferId: feedback.transferId,
        desk: feedback.desk,
        outcome: feedback.outcome,
        bounceBack: feedback.bounceBack,
        delaySeconds: feedback.delaySeconds,
        at: feedback.receivedAt,
      })
      .catch(() => undefined);
    return feedback;
  }

  async forTicket(ticketId: string): Promise<{ ticketId: string; feedback: TicketFeedback[]; transfers: number }> {
    const records = await this.guard(() => this.deps.records.byTicket(ticketId));
    if (records.length === 0) throw new AppError('ticket_not_found', `no transfer carried ticket ${ticketId}`);
    return { ticketId, transfers: records.length, feedback: records.flatMap((r) => r.feedback) };
  }

  async overdue(limit: number): Promise<{ deadlineHours: number; records: CallRecord[] }> {
    const cutoff = new Date(this.deps.clock.now().getTime() - this.deps.settings.deadlineHours * 3_600_000);
    return { deadlineHours: this.deps.settings.deadlineHours, records: await this.guard(() => this.deps.records.overdue(cutoff, limit)) };
  }

  /** The transfer the feedback is about: the one named, or the latest that carried the ticket to a desk. */
  private async transferFor(ticketId: string, transferId: string | undefined): Promise<CallRecord> {
    const records = await this.guard(() => this.deps.records.byTicket(ticketId));
    const transfers = records.filter((r) => r.kind === 'transfer' || r.state !== 'advised');
    if (transfers.length === 0) throw new AppError('ticket_not_found', `no transfer carried ticket ${ticketId}`);
    if (transferId !== undefined) {
      const named = transfers.find((r) => r.transferId === transferId);
      if (!named) throw new AppError('feedback_without_transfer', `transfer ${transferId} did not carry ticket ${ticketId}`);
      return named;
    }
    return transfers.find((r) => r.outcome === 'connected') ?? (transfers[0] as CallRecord);
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError('store_unavailable', `the call records are unavailable: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
