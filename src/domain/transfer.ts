// A transfer: one key press that moves a live call to another desk (一键携号转接) or opens a three-way call.
import { z } from 'zod';
import { maskNumber, type CallerId } from './phone-number.js';
import type { NuisanceMark, TransferRouting } from './routing-decision.js';
import type { DeskId } from './ticket-stub.js';

export const TransferModeSchema = z.enum(['blind', 'three-way']);
export type TransferMode = z.infer<typeof TransferModeSchema>;

export const PrioritySchema = z.enum(['emergency', 'normal']);
export type Priority = z.infer<typeof PrioritySchema>;

export const TRANSFER_STATES = [
  'requested',
  'stub-stored',
  'dialing',
  'ringing',
  'answered',
  'bridged',
  'conferenced',
  'completed',
  'cancelled',
  'failed',
  'rejected',
] as const;
export type TransferState = (typeof TRANSFER_STATES)[number];

export const TERMINAL_STATES: ReadonlySet<TransferState> = new Set(['completed', 'cancelled', 'failed', 'rejected']);
export function isTerminal(state: TransferState): boolean {
  return TERMINAL_STATES.has(state);
}

/**
 * Settled: the citizen's fate no longer hangs on this service. The call is with the other desk (the
 * bridge or conference lives on in the switch) or the transfer has ended. A draining instance waits
 * only for unsettled transfers.
 */
export function isSettled(state: TransferState): boolean {
  return isTerminal(state) || state === 'bridged' || state === 'conferenced';
}

/** Why the other desk was not reached. Stable codes: the agent's toolbar and the metrics key on them. */
export const TARGET_FAILURES = [
  'busy', // 486, USER_BUSY
  'no-answer', // 408 / timeout, NO_ANSWER
  'unreachable', // 480, NO_USER_RESPONSE
  'trunk-down', // 500/503, GATEWAY_DOWN, NETWORK_OUT_OF_ORDER
  'rejected', // 403/603, CALL_REJECTED
  'no-route', // 404/484, NO_ROUTE_DESTINATION, UNALLOCATED_NUMBER
  'switch-error', // anything else the switch reports
] as const;
export type TargetFailure = (typeof TARGET_FAILURES)[number];

/** These move on to the next backup trunk (备用专线); the others are the far side's answer. */
const NEXT_TRUNK_FAILURES: ReadonlySet<TargetFailure> = new Set(['busy', 'no-answer', 'unreachable', 'trunk-down']);
export function triesNextTrunk(failure: TargetFailure): boolean {
  return NEXT_TRUNK_FAILURES.has(failure);
}

export type FailureReason = TargetFailure | 'citizen-left' | 'target-left' | 'stub-unavailable';
export type Party = 'citizen' | 'agent' | 'target';

export interface Transfer {
  readonly id: string;
  readonly direction: { readonly from: DeskId; readonly to: DeskId };
  readonly mode: TransferMode;
  readonly priority: Priority;
  /** 首接负责制: the desk that received the call first keeps it when ownership stays undecided. */
  readonly firstReceiver: DeskId;
  /** The switch instance holding the citizen's leg, and that leg. */
  readonly citizenLeg: { readonly switchId: string; readonly legId: string };
  readonly agent: { readonly agentId: string; readonly seatId: string; readonly legId: string | null };
  /** What is dialled, and through which gateways in order (备用专线). */
  readonly target: { readonly desk: DeskId; readonly number: string; readonly trunks: readonly string[] };
  readonly presentedCallerId: CallerId;
  readonly ticketId: string;
  /** True when the stub could not be stored (emergency with the store down); retried until it is. */
  readonly stubDeferred: boolean;
  readonly state: TransferState;
  readonly trunkIndex: number;
  readonly targetLegId: string | null;
  readonly failure: { readonly reason: FailureReason; readonly cause: string } | null;
  readonly endedBy: Party | null;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** What the routing check decided (the list, an emergency, an override, a redirect); absent without a policy. */
  readonly routing?: TransferRouting;
}

/**
 * A transfer as every service instance hears of it (the live feed's source, on the event bus): what a
 * supervisor's wall shows, the caller's number masked. The whole transfer (the citizen's number, the
 * legs, the trunks, the routing decision) stays in the transfer store: carried in every transition
 * that went to the bus's stream, it was half of what Redis wrote for a transfer.
 */
export type TransferSummary = Pick<
  Transfer,
  'id' | 'state' | 'direction' | 'mode' | 'priority' | 'trunkIndex' | 'ticketId' | 'stubDeferred' | 'failure' | 'endedBy' | 'version' | 'createdAt' | 'updatedAt'
> & {
  /** Masked: 138****8000, or "withheld". */
  readonly callerId: string;
  readonly agent: { readonly agentId: string; readonly seatId: string };
  readonly targetDesk: DeskId;
  readonly nuisance: NuisanceMark | null;
};

export function summarise(t: Transfer): TransferSummary {
  return {
    id: t.id,
    state: t.state,
    direction: { from: t.direction.from, to: t.direction.to },
    mode: t.mode,
    priority: t.priority,
    callerId: maskNumber(t.presentedCallerId),
    agent: { agentId: t.agent.agentId, seatId: t.agent.seatId },
    targetDesk: t.target.desk,
    trunkIndex: t.trunkIndex,
    ticketId: t.ticketId,
    stubDeferred: t.stubDeferred,
    failure: t.failure ? { reason: t.failure.reason, cause: t.failure.cause } : null,
    endedBy: t.endedBy,
    nuisance: t.routing?.nuisance ?? null,
    version: t.version,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
  };
}

export type TransferEvent =
  | { readonly type: 'stub-stored'; readonly deferred: boolean }
  | { readonly type: 'stub-failed' }
  | { readonly type: 'dial-started'; readonly legId: string }
  | { readonly type: 'target-ringing' }
  | { readonly type: 'target-answered' }
  | { readonly type: 'target-failed'; readonly failure: TargetFailure; readonly cause: string }
  | { readonly type: 'bridged' }
  | { readonly type: 'conference-joined' }
  | { readonly type: 'party-left'; readonly party: Party; readonly cause: string }
  | { readonly type: 'cancel-requested' }
  /** The nuisance lookup answered: the mark joins the routing decision; the call is not touched. */
  | { readonly type: 'nuisance-checked'; readonly nuisance: NuisanceMark };
export type TransferEventType = TransferEvent['type'];
export const TRANSFER_EVENT_TYPES: readonly TransferEventType[] = [
  'stub-stored',
  'stub-failed',
  'dial-started',
  'target-ringing',
  'target-answered',
  'target-failed',
  'bridged',
  'conference-joined',
  'party-left',
  'cancel-requested',
  'nuisance-checked',
];

/** What the shell must do after a transition, in order. */
export type TransferEffect =
  | { readonly type: 'place-call'; readonly trunk: string; readonly trunkIndex: number }
  | { readonly type: 'bridge-to-target'; readonly targetLegId: string }
  | { readonly type: 'join-conference'; readonly targetLegId: string }
  | { readonly type: 'release-agent' }
  | { readonly type: 'hang-up-target'; readonly targetLegId: string }
  /** The citizen is never left alone: a failed transfer puts the call back with the agent. */
  | { readonly type: 'return-to-agent'; readonly reason: FailureReason | 'cancelled' }
  | { readonly type: 'end-call'; readonly reason: 'citizen-left' | 'target-left' };
