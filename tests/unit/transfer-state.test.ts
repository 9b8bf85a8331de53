// The whole table: every state × every event, for both modes. A pair marked "refused" must be refused
// with a reason, never silently accepted.
import { describe, expect, it } from 'vitest';
import type { TransferRouting } from '../../src/domain/routing-decision.js';
import { transition } from '../../src/domain/transfer-state.js';
import {
  isSettled,
  TRANSFER_EVENT_TYPES,
  TRANSFER_STATES,
  type Transfer,
  type TransferEvent,
  type TransferMode,
  type TransferState,
} from '../../src/domain/transfer.js';

const NOW = '2026-11-23T08:00:00.000Z';

/** The routing check's decision as a transfer is stored with it: its nuisance lookup has not answered. */
const ROUTING: TransferRouting = {
  basis: 'list',
  requestedTo: '110',
  categoryCode: '1.02',
  categoryName: null,
  listedOwner: '110',
  overrideReason: null,
  danger: false,
  harassment: null,
  redirect: null,
  nuisance: null,
};

function transferIn(state: TransferState, mode: TransferMode, overrides: Partial<Transfer> = {}): Transfer {
  const dialled = !['requested', 'stub-stored'].includes(state);
  return {
    id: 't-1',
    direction: { from: '12345', to: '110' },
    mode,
    priority: 'normal',
    firstReceiver: '12345',
    citizenLeg: { switchId: 'fs1', legId: 'citizen-leg' },
    agent: { agentId: 'A1', seatId: 'S1', legId: 'agent-leg' },
    target: { desk: '110', number: '110', trunks: ['sw110', 'sw110-backup'] },
    presentedCallerId: { kind: 'number', national: '13800138000', type: 'mobile' },
    ticketId: 'GD-1',
    stubDeferred: false,
    state,
    trunkIndex: 0,
    targetLegId: dialled ? 'leg-1' : null,
    failure: null,
    endedBy: null,
    version: 3,
    createdAt: NOW,
    updatedAt: NOW,
    routing: ROUTING,
    ...overrides,
  };
}

const EVENTS: Record<string, TransferEvent> = {
  'stub-stored': { type: 'stub-stored', deferred: false },
  'stub-failed': { type: 'stub-failed' },
  'dial-started': { type: 'dial-started', legId: 'leg-2' },
  'target-ringing': { type: 'target-ringing' },
  'target-answered': { type: 'target-answered' },
  'target-failed busy': { type: 'target-failed', failure: 'busy', cause: 'USER_BUSY' },
  'target-failed rejected': { type: 'target-failed', failure: 'rejected', cause: 'CALL_REJECTED' },
  bridged: { type: 'bridged' },
  'conference-joined': { type: 'conference-joined' },
  'citizen left': { type: 'party-left', party: 'citizen', cause: 'NORMAL_CLEARING' },
  'agent left': { type: 'party-left', party: 'agent', cause: 'NORMAL_CLEARING' },
  'target left': { type: 'party-left', party: 'target', cause: 'NORMAL_CLEARING' },
  'cancel-requested': { type: 'cancel-requested' },
  'nuisance-checked': { type: 'nuisance-checked', nuisance: { flagged: 'threatening', recentCalls: 3, repeated: true } },
};

type Expected = 'refused' | readonly [TransferState, ...string[]];
const R = 'refused' as const;

/** Blind transfer. Effects are listed by type, in order. */
const BLIND: Record<TransferState, Record<keyof typeof EVENTS, Expected>> = {
  requested: {
    'stub-stored': ['stub-stored', 'place-call'],
    'stub-failed': ['rejected'],
    'dial-started': R,
    'target-ringing': R,
    'target-answered': R,
    'target-failed busy': R,
    'target-failed rejected': R,
    bridged: R,
    'conference-joined': R,
    'citizen left': ['cancelled'],
    'agent left': ['cancelled'],
    'target left': R,
    'cancel-requested': ['cancelled'],
    'nuisance-checked': ['requested'],
  },
  'stub-stored': {
    'stub-stored': R,
    'stub-failed': R,
    'dial-started': ['dialing'],
    'target-ringing': R,
    'target-answered': R,
    'target-failed busy': R,
    'target-failed rejected': R,
    bridged: R,
    'conference-joined': R,
    'citizen left': ['cancelled'],
    'agent left': ['cancelled'],
    'target left': R,
    'cancel-requested': ['cancelled'],
    'nuisance-checked': ['stub-stored'],
  },
  dialing: {
    'stub-stored': R,
    'stub-failed': R,
    'dial-started': R,
    'target-ringing': ['ringing'],
    'target-answered': ['answered', 'bridge-to-target'],
    'target-failed busy': ['dialing', 'place-call'],
    'target-failed rejected': ['failed', 'return-to-agent'],
    bridged: R,
    'conference-joined': R,
    'citizen left': ['failed', 'hang-up-target'],
    'agent left': ['dialing'],
    'target left': R,
    'cancel-requested': ['cancelled', 'hang-up-target', 'return-to-agent'],
    'nuisance-checked': ['dialing'],
  },
  ringing: {
    'stub-stored': R,
    'stub-failed': R,
    'dial-started': R,
    'target-ringing': ['ringing'],
    'target-answered': ['answered', 'bridge-to-target'],
    'target-failed busy': ['dialing', 'place-call'],
    'target-failed rejected': ['failed', 'return-to-agent'],
    bridged: R,
    'conference-joined': R,
    'citizen left': ['failed', 'hang-up-target'],
    'agent left': ['ringing'],
    'target left': R,
    'cancel-requested': ['cancelled', 'hang-up-target', 'return-to-agent'],
    'nuisance-checked': ['ringing'],
  },
  answered: {
    'stub-stored': R,
    'stub-failed': R,
    'dial-started': R,
    'target-ringing': R,
    'target-answered': R,
    'target-failed busy': ['failed', 'hang-up-target', 'return-to-agent'],
    'target-failed rejected': ['failed', 'hang-up-target', 'return-to-agent'],
    bridged: ['bridged', 'release-agent'],
    'conference-joined': R,
    'citizen left': ['failed', 'hang-up-target'],
    'agent left': ['answered'],
    'target left': ['failed', 'hang-up-target', 'return-to-agent'],
    'cancel-requested': R,
    'nuisance-checked': ['answered'],
  },
  bridged: {
    'stub-stored': R,
    'stub-failed': R,
    'dial-started': R,
    'target-ringing': R,
    'target-answered': R,
    'target-failed busy': R,
    'target-failed rejected': R,
    bridged: R,
    'conference-joined': R,
    'citizen left': ['completed'],
    'agent left': ['bridged'],
    'target left': ['completed'],
    'cancel-requested': R,
    'nuisance-checked': ['bridged'],
  },
  conferenced: {
    'stub-stored': R,
    'stub-failed': R,
    'dial-started': R,
    'target-ringing': R,
    'target-answered': R,
    'target-failed busy': R,
    'target-failed rejected': R,
    bridged: R,
    'conference-joined': R,
    'citizen left': ['completed', 'end-call'],
    'agent left': ['bridged'],
    'target left': ['completed'],
    'cancel-requested': R,
    'nuisance-checked': ['conferenced'],
  },
  completed: allRefused(),
  cancelled: allRefused(),
  failed: allRefused(),
  rejected: allRefused(),
};

/** Three-way differs from blind only where the answered call joins a conference. */
const THREE_WAY: Record<TransferState, Record<keyof typeof EVENTS, Expected>> = {
  ...BLIND,
  dialing: { ...BLIND.dialing, 'target-answered': ['answered', 'join-conference'] },
  ringing: { ...BLIND.ringing, 'target-answered': ['answered', 'join-conference'] },
  answered: { ...BLIND.answered, bridged: R, 'conference-joined': ['conferenced'] },
};

function allRefused(): Record<keyof typeof EVENTS, Expected> {
  return Object.fromEntries(Object.keys(EVENTS).map((k) => [k, R])) as Record<keyof typeof EVENTS, Expected>;
}

describe('the transfer state machine', () => {
  it('covers every state and every event type', () => {
    expect(Object.keys(BLIND).sort()).toEqual([...TRANSFER_STATES].sort());
    const covered = new Set(Object.values(EVENTS).map((e) => e.type));
    expect([...covered].sort()).toEqual([...TRANSFER_EVENT_TYPES].sort());
  });

  for (const [mode, table] of [['blind', BLIND], ['three-way', THREE_WAY]] as const) {
    for (const state of TRANSFER_STATES) {
      for (const [name, event] of Object.entries(EVENTS)) {
        const expected = table[state][name] as Expected;
        const title = expected === R ? 'refuses' : `goes to ${expected[0]}${expected.length > 1 ? ` doing ${expected.slice(1).join(', ')}` : ''}`;
        it(`${mode}: in ${state}, ${name} ${title}`, () => {
          const before = transferIn(state, mode);
          const result = transition(before, event, '2026-11-23T08:00:05.000Z');
          if (expected === R) {
            expect(result.ok).toBe(false);
            expect(!result.ok && result.reason.length).toBeGreaterThan(5);
            return;
          }
          expect(result.ok, !result.ok ? result.reason : '').toBe(true);
          if (!result.ok) return;
          expect(result.transfer.state).toBe(expected[0]);
          expect(result.effects.map((e) => e.type)).toEqual(expected.slice(1));
          expect(result.transfer.version).toBe(before.version + 1);
          expect(result.transfer.updatedAt).toBe('2026-11-23T08:00:05.000Z');
        });
      }
    }
  }
});

describe('the citizen is never left alone', () => {
  it('moves to the backup trunk on busy, and returns the call to the agent when the last trunk fails', () => {
    const first = transition(transferIn('ringing', 'blind'), EVENTS['target-failed busy']!, NOW);
    expect(first.ok && first.transfer.trunkIndex).toBe(1);
    expect(first.ok && first.transfer.targetLegId).toBeNull();
    expect(first.ok && first.effects).toEqual([{ type: 'place-call', trunk: 'sw110-backup', trunkIndex: 1 }]);

    const onBackup = transferIn('ringing', 'blind', { trunkIndex: 1, targetLegId: 'leg-2' });
    const last = transition(onBackup, { type: 'target-failed', failure: 'no-answer', cause: 'NO_ANSWER' }, NOW);
    expect(last.ok && last.transfer.state).toBe('failed');
    expect(last.ok && last.transfer.failure).toEqual({ reason: 'no-answer', cause: 'NO_ANSWER' });
    expect(last.ok && last.effects).toEqual([{ type: 'return-to-agent', reason: 'no-answer' }]);
  });

  it.each(['busy', 'no-answer', 'unreachable', 'trunk-down'] as const)('tries the next trunk on %s', (failure) => {
    const result = transition(transferIn('dialing', 'blind'), { type: 'target-failed', failure, cause: 'X' }, NOW);
    expect(result.ok && result.transfer.state).toBe('dialing');
  });

  it.each(['rejected', 'no-route', 'switch-error'] as const)('does not try the next trunk on %s', (failure) => {
    const result = transition(transferIn('dialing', 'blind'), { type: 'target-failed', failure, cause: 'X' }, NOW);
    expect(result.ok && result.transfer.state).toBe('failed');
    expect(result.ok && result.effects.at(-1)).toEqual({ type: 'return-to-agent', reason: failure });
  });

  it('after a failed trunk, accepts the next dial, and refuses a second one', () => {
    const waiting = transferIn('dialing', 'blind', { trunkIndex: 1, targetLegId: null });
    const dialled = transition(waiting, { type: 'dial-started', legId: 'leg-2' }, NOW);
    expect(dialled.ok && dialled.transfer.targetLegId).toBe('leg-2');
    expect(transition(waiting, { type: 'target-ringing' }, NOW).ok).toBe(false);
    expect(dialled.ok && transition(dialled.transfer, { type: 'dial-started', legId: 'leg-3' }, NOW).ok).toBe(false);
  });

  it('records a deferred stub on the transfer', () => {
    const result = transition(transferIn('requested', 'blind'), { type: 'stub-stored', deferred: true }, NOW);
    expect(result.ok && result.transfer.stubDeferred).toBe(true);
  });

  it('cancelling a call that rings hangs up that leg and gives the call back to the agent', () => {
    const result = transition(transferIn('ringing', 'blind'), { type: 'cancel-requested' }, NOW);
    expect(result.ok && result.effects).toEqual([
      { type: 'hang-up-target', targetLegId: 'leg-1' },
      { type: 'return-to-agent', reason: 'cancelled' },
    ]);
  });
});

describe('the nuisance mark', () => {
  const mark = { flagged: null, recentCalls: 1, repeated: false } as const;

  it('joins the routing decision and leaves the call as it is', () => {
    const before = transferIn('ringing', 'blind');
    const result = transition(before, { type: 'nuisance-checked', nuisance: mark }, NOW);
    expect(result.ok && result.transfer).toEqual({ ...before, routing: { ...ROUTING, nuisance: mark }, version: before.version + 1 });
    expect(result.ok && result.effects).toEqual([]);
  });

  it('is set once', () => {
    const marked = transferIn('dialing', 'blind', { routing: { ...ROUTING, nuisance: mark } });
    const again = transition(marked, { type: 'nuisance-checked', nuisance: { ...mark, recentCalls: 2 } }, NOW);
    expect(again.ok).toBe(false);
    expect(!again.ok && again.reason).toMatch(/once/);
  });

  it('is refused for a transfer that had no routing check', () => {
    const unchecked = transferIn('dialing', 'blind', { routing: undefined });
    const result = transition(unchecked, { type: 'nuisance-checked', nuisance: mark }, NOW);
    expect(!result.ok && result.reason).toMatch(/no routing check/);
  });
});

describe('isSettled', () => {
  it.each(TRANSFER_STATES.map((s) => [s] as const))('%s', (state) => {
    const settled = ['bridged', 'conferenced', 'completed', 'cancelled', 'failed', 'rejected'].includes(state);
    expect(isSettled(state)).toBe(settled);
  });
});
