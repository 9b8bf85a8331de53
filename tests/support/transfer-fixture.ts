// A transfer as the service stores it, for tests of the stores: fresh ids, a 12345 → 110 blind call.
import { randomUUID } from 'node:crypto';
import type { Transfer } from '../../src/domain/transfer.js';

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
