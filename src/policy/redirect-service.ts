// Redirects (引导拨打其他政务热线 / 引导分流至相关企业): for hotline and utility categories the agent either
// carries the call over with the citizen's number (a transfer to the hotline's desk, marked as a
// redirect) or advises the caller which number to dial, as the list says. Both are recorded as
// redirects, not desk transfers.
import { randomUUID } from 'node:crypto';
import { maskNumber } from '../domain/phone-number.js';
import { resolveCategory, type RoutingList } from '../domain/routing-list.js';
import { AppError } from '../errors.js';
import type { Clock, EventBus } from '../ports.js';
import type { CallRecordStore, RecordRow } from '../records/call-record.js';
import type { TransferRequest } from '../transfer/transfer-request.js';
import type { RequestOptions, TransferService } from '../transfer/transfer-service.js';
import type { Transfer } from '../domain/transfer.js';

export type RedirectOutcome =
  | { readonly action: 'transfer'; readonly transfer: Transfer; readonly replay: boolean }
  | {
      readonly action: 'advise';
      readonly recordId: string;
      readonly name: string;
      readonly numbers: readonly string[];
      readonly note: string | null;
    };

export class RedirectService {
  constructor(
    private readonly deps: {
      list: RoutingList;
      service: TransferService;
      records: CallRecordStore;
      bus: EventBus;
      clock: Clock;
    },
  ) {}

  async redirect(request: Omit<TransferRequest, 'to'>, options: RequestOptions): Promise<RedirectOutcome> {
    const resolved = resolveCategory(this.deps.list, request.ticket.categoryCode);
    if (!resolved) throw new AppError('unknown_category', `category ${request.ticket.categoryCode} is not in the routing list`);
    const r = resolved.resolution;
    if (r.kind !== 'redirect') {
      throw new AppError('not_a_redirect', `the routing list gives ${resolved.category.name} to desk ${r.desk}: transfer it`, { owner: r.desk });
    }
    const at = this.deps.clock.now().toISOString();
    if (r.action === 'transfer' && r.desk !== null) {
      const { transfer, replay } = await this.deps.service.request({ ...request, to: r.desk }, options);
      if (!replay) await this.publish(transfer.id, r.via, r.id, 'transfer', at);
      return { action: 'transfer', transfer, replay };
    }
    const recordId = randomUUID();
    const row: RecordRow = {
      transferId: recordId,
      kind: 'redirect',
      ticketId: request.ticket.ticketId,
      from: request.from,
      to: r.id,
      mode: 'none',
      priority: request.priority,
      firstReceiver: request.firstReceiver ?? request.from,
      callerId: maskNumber(request.callerNumber),
      categoryCode: request.ticket.categoryCode,
      agentId: request.agent.agentId,
      state: 'advised',
      version: 1,
      routing: null,
      redirect: { via: r.via, id: r.id, action: 'advise', numbers: r.numbers },
      failure: null,
      createdAt: at,
      answeredAt: null,
      endedAt: at,
      updatedAt: at,
      everBridged: false,
      trunkFallbacks: 0,
    };
    try {
      await this.deps.records.recordAdvice(row);
    } catch (err) {
      throw new AppError('store_unavailable', `the call records are unavailable: ${err instanceof Error ? err.message : String(err)}`);
    }
    await this.publish(recordId, r.via, r.id, 'advise', at);
    return { action: 'advise', recordId, name: r.name, numbers: r.numbers, note: r.note };
  }

  private async publish(recordId: string, via: 'hotline' | 'utility', target: string, action: 'transfer' | 'advise', at: string) {
    await this.deps.bus.publish({ kind: 'redirect', recordId, via, target, action, at }).catch(() => undefined);
  }
}
