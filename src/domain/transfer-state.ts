// The transfer's state machine as a pure function (state, event) → (state, effects).
// requested → stub-stored → dialing → ringing → answered → bridged | conferenced → completed,
// with failures, next-trunk retries and cancels. A pair not listed here is refused, never ignored.
import {
  isTerminal,
  triesNextTrunk,
  type FailureReason,
  type Transfer,
  type TransferEffect,
  type TransferEvent,
  type TransferState,
} from './transfer.js';

export type TransitionResult =
  | { readonly ok: true; readonly transfer: Transfer; readonly effects: readonly TransferEffect[] }
  | { readonly ok: false; readonly state: TransferState; readonly event: TransferEvent['type']; readonly reason: string };

type Change = {
  state: TransferState;
  effects?: TransferEffect[];
  patch?: Partial<Pick<Transfer, 'stubDeferred' | 'trunkIndex' | 'targetLegId' | 'failure' | 'endedBy' | 'routing'>>;
};

export function transition(transfer: Transfer, event: TransferEvent, now: string): TransitionResult {
  const change = decide(transfer, event);
  if (typeof change === 'string') {
    return { ok: false, state: transfer.state, event: event.type, reason: change };
  }
  return {
    ok: true,
    transfer: {
      ...transfer,
      ...change.patch,
      state: change.state,
      version: transfer.version + 1,
      updatedAt: now,
    },
    effects: change.effects ?? [],
  };
}

const DIALLING_STATES: ReadonlySet<TransferState> = new Set(['dialing', 'ringing']);

/** Whether a cancel applies: only before the target answered. */
export function isCancellable(state: TransferState): boolean {
  return state === 'requested' || state === 'stub-stored' || DIALLING_STATES.has(state);
}

/** Returns the change, or a sentence saying why the event is refused in this state. */
function decide(t: Transfer, event: TransferEvent): Change | string {
  if (isTerminal(t.state)) return `the transfer has already ended (${t.state})`;

  switch (event.type) {
    case 'stub-stored':
      if (t.state !== 'requested') return 'the stub is stored once, before any signalling';
      return {
        state: 'stub-stored',
        patch: { stubDeferred: event.deferred },
        effects: [placeCall(t, 0)],
      };

    case 'stub-failed':
      if (t.state !== 'requested') return 'the stub can only fail before any signalling';
      // Nothing has left yet: the agent still has the citizen, so nothing to undo.
      return { state: 'rejected', patch: { failure: { reason: 'stub-unavailable', cause: 'ticket store unavailable' } } };

    case 'dial-started':
      if (t.state === 'stub-stored' || (t.state === 'dialing' && t.targetLegId === null)) {
        return { state: 'dialing', patch: { targetLegId: event.legId } };
      }
      return 'a call is already being placed for this transfer';

    case 'target-ringing':
      if (t.state === 'dialing' && t.targetLegId !== null) return { state: 'ringing' };
      if (t.state === 'ringing') return { state: 'ringing' }; // 180 after 183: still ringing
      return 'nothing is being dialled';

    case 'target-answered': {
      if (!DIALLING_STATES.has(t.state) || t.targetLegId === null) return 'nothing is being dialled';
      const join: TransferEffect =
        t.mode === 'blind'
          ? { type: 'bridge-to-target', targetLegId: t.targetLegId }
          : { type: 'join-conference', targetLegId: t.targetLegId };
      return { state: 'answered', effects: [join] };
    }

    case 'target-failed': {
      if (DIALLING_STATES.has(t.state)) {
        const next = t.trunkIndex + 1;
        if (triesNextTrunk(event.failure) && next < t.target.trunks.length) {
          return {
            state: 'dialing',
            patch: { trunkIndex: next, targetLegId: null },
            effects: [placeCall(t, next)],
          };
        }
        return fail(t, event.failure, event.cause);
      }
      if (t.state === 'answered') {
        // The bridge or conference join failed after the far side answered.
        return fail(t, event.failure, event.cause);
      }
      return 'no call to the other desk is in progress';
    }

    case 'bridged':
      if (t.state !== 'answered') return 'only an answered call can be bridged';
      if (t.mode !== 'blind') return 'a three-way transfer joins a conference, it is not bridged';
      return { state: 'bridged', effects: [{ type: 'release-agent' }] };

    case 'conference-joined':
      if (t.state !== 'answered') return 'only an answered call can join the conference';
      if (t.mode !== 'three-way') return 'a blind transfer is bridged, not conferenced';
      return { state: 'conferenced' };

    case 'party-left':
      return partyLeft(t, event.party, event.cause);

    case 'cancel-requested': {
      if (!isCancellable(t.state)) return 'only a transfer that has not been answered can be cancelled';
      if (t.state === 'requested' || t.state === 'stub-stored') return { state: 'cancelled' };
      const effects: TransferEffect[] = [];
      if (t.targetLegId !== null) effects.push({ type: 'hang-up-target', targetLegId: t.targetLegId });
      effects.push({ type: 'return-to-agent', reason: 'cancelled' });
      return { state: 'cancelled', effects };
    }

    case 'nuisance-checked':
      if (t.routing === undefined) return 'no routing check was made for this transfer';
      if (t.routing.nuisance !== null) return 'the nuisance mark is set once';
      return { state: t.state, patch: { routing: { ...t.routing, nuisance: event.nuisance } } };
  }
}

function partyLeft(t: Transfer, party: 'citizen' | 'agent' | 'target', cause: string): Change | string {
  switch (t.state) {
    case 'requested':
    case 'stub-stored':
      if (party === 'target') return 'no call to the other desk exists yet';
      // Nobody has been dialled; whoever hung up, there is nothing left to move.
      return { state: 'cancelled', patch: { endedBy: party } };
    case 'dialing':
    case 'ringing':
    case 'answered': {
      if (party === 'citizen') {
        const effects: TransferEffect[] =
          t.targetLegId === null ? [] : [{ type: 'hang-up-target', targetLegId: t.targetLegId }];
        return { state: 'failed', patch: { failure: { reason: 'citizen-left', cause }, endedBy: 'citizen' }, effects };
      }
      if (party === 'target') {
        if (t.state !== 'answered') return 'the far side reports failures as target-failed while dialling';
        return fail(t, 'target-left', cause);
      }
      // The agent hung up while the other desk was being dialled. The transfer goes on: the citizen is
      // on the switch (parked or held), and a failure still hands the call back to the agent's seat.
      return { state: t.state };
    }
    case 'bridged':
      if (party === 'agent') return { state: 'bridged' }; // the release we asked for
      return { state: 'completed', patch: { endedBy: party } };
    case 'conferenced':
      if (party === 'agent') return { state: 'bridged' }; // three-way becomes blind
      if (party === 'target') {
        // The other desk left the consultation: the citizen stays with the agent (首接负责制).
        return { state: 'completed', patch: { endedBy: 'target' } };
      }
      return { state: 'completed', patch: { endedBy: 'citizen' }, effects: [{ type: 'end-call', reason: 'citizen-left' }] };
    default:
      return `unexpected state ${t.state}`;
  }
}

function placeCall(t: Transfer, trunkIndex: number): TransferEffect {
  const trunk = t.target.trunks[trunkIndex];
  if (trunk === undefined) throw new RangeError(`transfer ${t.id} has no trunk ${trunkIndex}`);
  return { type: 'place-call', trunk, trunkIndex };
}

function fail(t: Transfer, reason: FailureReason, cause: string): Change {
  const effects: TransferEffect[] = [];
  if (t.targetLegId !== null && t.state === 'answered') {
    effects.push({ type: 'hang-up-target', targetLegId: t.targetLegId });
  }
  effects.push({ type: 'return-to-agent', reason });
  return { state: 'failed', patch: { failure: { reason, cause } }, effects };
}
