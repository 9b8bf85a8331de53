// The whole table: every state × every event, for both modes. A pair marked "refused" must be refused
// with a reason, never silently accepted.
import { describe, expect, it } from 'vitest';
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

describe('isSettled', () => {
  it.each(TRANSFER_STATES.map((s) => [s] as const))('%s', (state) => {
    const settled = ['bridged', 'conferenced', 'completed', 'cancelled', 'failed', 'rejected'].includes(state);
    expect(isSettled(state)).toBe(settled);
  });
});
