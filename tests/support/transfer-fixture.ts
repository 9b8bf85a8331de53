// A transfer as the service stores it, for tests of the stores: fresh ids, a 12345 → 110 blind call.
import { randomUUID } from 'node:crypto';
import type { TicketStub } from '../../src/domain/ticket-stub.js';
import type { Transfer } from '../../src/domain/transfer.js';
import type { Opening, TransitionRecord } from '../../src/ports.js';

export function aTransfer(overrides: Partial<Transfer> = {}): Transfer {
  const now = '2026-11-23T08:00:00.000Z';
  return {
    id: randomUUID(),
    direction: { from: '12345', to: '110' },
    mode: 'blind',
    priority: 'normal',
    firstReceiver: '12345',
    citizenLeg: { switchId: 'fs1', legId: randomUUID() },
    agent: { agentId: 'A1', seatId: 'S1', legId: null },
    target: { desk: '110', number: '110', trunks: ['sw110', 'sw110-backup'] },
    presentedCallerId: { kind: 'number', national: '13800138000', type: 'mobile' },
    ticketId: `GD-${randomUUID().slice(0, 8)}`,
    stubDeferred: false,
    state: 'requested',
    trunkIndex: 0,
    targetLegId: null,
    failure: null,
    endedBy: null,
    version: 1,
    createdAt: now,
    updatedAt: now,
    ...overrides,
  };
}

/** The audit record of a transfer's latest step. */
export function aRecord(t: Transfer, event: TransitionRecord['event'] = 'created'): TransitionRecord {
  return { transferId: t.id, at: t.updatedAt, from: null, to: t.state, event, version: t.version };
}

export const TICKET_STUB: TicketStub = {
  ticketId: 'GD-2026-1',
  kind: 'incident',
  sourceDesk: '110',
  categoryCode: '0301',
  divisionCode: '650100',
  summary: '群众反映噪音扰民，非警情，转12345处理。',
  urgency: 'normal',
  callerNumber: '13900139000',
  agentId: 'P2001',
  seatId: 'J03',
  createdAt: '2026-11-23T08:00:00.000Z',
};

/** A new transfer as the service first stores it: with its own stub, and the record that created it. */
export function anOpening(t: Transfer, steps: Opening['steps'] = [{ transfer: t, record: aRecord(t) }]): Opening {
  return { steps, stub: { ...TICKET_STUB, ticketId: t.ticketId }, stubTtlSeconds: 60 };
}
