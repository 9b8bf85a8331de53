// The interfaces the core needs from the outside world. One adapter per real system implements each
// (adapters/memory, adapters/redis, adapters/freeswitch, adapters/sip); main.ts wires them.
import type { CallerId } from './domain/phone-number.js';
import type { TicketStub, DeskId } from './domain/ticket-stub.js';
import { summarise } from './domain/transfer.js';
import type {
  FailureReason,
  Party,
  Priority,
  TargetFailure,
  Transfer,
  TransferEvent,
  TransferMode,
  TransferState,
  TransferSummary,
} from './domain/transfer.js';

// ---------------------------------------------------------------- call control (a switch)

export type SwitchState = 'connected' | 'connecting' | 'disconnected' | 'auth-failed';
export interface SwitchStatus {
  readonly switchId: string;
  readonly kind: string; // 'freeswitch', 'drachtio', 'test-peer'
  readonly desk: DeskId;
  readonly state: SwitchState;
  readonly detail?: string;
}

export interface PlaceCallRequest {
  readonly transferId: string;
  /** Chosen by the service (FreeSWITCH origination_uuid) so events can be matched before the job returns. */
  readonly legId: string;
  readonly citizenLegId: string;
  readonly agentLegId: string | null;
  readonly mode: TransferMode;
  readonly priority: Priority;
  /** The transferring desk, recorded as Diversion / History-Info / Referred-By. */
  readonly sourceDesk: DeskId;
  readonly target: { readonly desk: DeskId; readonly number: string; readonly trunk: string };
  /** The citizen's number (号码双向推送); withheld stays withheld. */
  readonly callerId: CallerId;
  /** Only the id and a URL travel in signalling (X-Ticket-Id, User-to-User, Call-Info), never the ticket. */
  readonly ticket: { readonly ticketId: string; readonly stubUrl: string };
  readonly answerTimeoutSeconds: number;
}

/** What a switch reports about a transfer's legs, already mapped to the domain's words. */
export type CallControlEvent =
  | { readonly type: 'target-ringing'; readonly transferId: string; readonly legId: string }
  | { readonly type: 'target-answered'; readonly transferId: string; readonly legId: string }
  | {
      readonly type: 'target-failed';
      readonly transferId: string;
      readonly legId: string;
      readonly failure: TargetFailure;
      /** The switch's own words: FreeSWITCH hangup cause or SIP status. */
      readonly cause: string;
    }
  | { readonly type: 'bridged'; readonly transferId: string }
  | { readonly type: 'conference-joined'; readonly transferId: string }
  | { readonly type: 'party-left'; readonly transferId: string; readonly party: Party; readonly cause: string };

/** Legs of a transfer in flight, handed to a driver so it can settle them from the switch's own state. */
export interface InFlightLegs {
  readonly transferId: string;
  readonly state: TransferState;
  readonly mode: TransferMode;
  readonly citizenLegId: string;
  readonly agentLegId: string | null;
  readonly targetLegId: string | null;
}

export interface CallControl {
  readonly switchId: string;
  status(): SwitchStatus;
  /** Resolves once the switch has accepted the command; progress comes as events. */
  placeCall(request: PlaceCallRequest): Promise<void>;
  bridgeToTarget(legs: { transferId: string; citizenLegId: string; targetLegId: string }): Promise<void>;
  joinConference(legs: {
    transferId: string;
    citizenLegId: string;
    agentLegId: string | null;
    targetLegId: string;
  }): Promise<void>;
  releaseAgent(legs: { transferId: string; agentLegId: string | null }): Promise<void>;
  hangUp(leg: { transferId: string; legId: string; cause: string }): Promise<void>;
  /** The citizen is never left alone: put the call back with the agent after a failure or cancel. */
  returnToAgent(legs: {
    transferId: string;
    citizenLegId: string;
    agentLegId: string | null;
    reason: FailureReason | 'cancelled';
  }): Promise<void>;
  /** Reports, as events, what became of these legs while the driver could not see them. */
  reconcile(transfers: readonly InFlightLegs[]): Promise<void>;
  /**
   * The trunks (gateways) this switch reaches a desk through, in order (备用专线), when the switch has its
   * own names for them (the SIP edge does); undefined: use the desk directory's (`config.desks.<id>.trunks`).
   * An empty list means this switch cannot reach the desk, and the transfer is refused.
   */
  trunksFor?(desk: DeskId): readonly string[] | undefined;
  onEvent(listener: (event: CallControlEvent) => void): () => void;
  onStatus(listener: (status: SwitchStatus) => void): () => void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- stores

export interface TicketStore {
  /** Stores the whole stub at once, with a time to live; no half-written stub is ever readable. */
  put(stub: TicketStub, ttlSeconds: number): Promise<void>;
  get(ticketId: string): Promise<TicketStub | null>;
}

export interface TransitionRecord {
  readonly transferId: string;
  readonly at: string;
  readonly from: TransferState | null;
  readonly to: TransferState;
  readonly event: TransferEvent['type'] | 'created';
  readonly version: number;
  readonly detail?: string;
}

export type CreateResult =
  | { readonly outcome: 'created' }
  /** The same Idempotency-Key was seen: this is that transfer (double press, retry after timeout). */
  | { readonly outcome: 'replay'; readonly transferId: string; readonly sameRequest: boolean }
  /** The citizen's call is already being transferred by another transfer. */
  | { readonly outcome: 'call-busy'; readonly transferId: string };

export interface CreateOptions {
  readonly idempotencyKey: string | null;
  /** A digest of the request, so one key reused for a different request is told apart. */
  readonly requestFingerprint: string;
  /**
   * With instances sharing the store: the creator's lease, taken in the same atomic write, so no other
   * instance ever sees the new transfer without a holder. Only a store that leases live in takes one.
   */
  readonly lease?: LeaseClaim;
}

/** A lease as the creator of a transfer takes it: its key, this instance, and for how long. */
export interface LeaseClaim {
  readonly key: string;
  readonly holderId: string;
  readonly ttlMs: number;
}

/**
 * A new transfer as it is first stored: the stub with it, and the transitions made before any
 * signalling (created, stub stored, first trunk dialled), so a single write precedes the call.
 */
export interface Opening {
  /** Oldest first; the first is 'created'. */
  readonly steps: readonly TransferStep[];
  readonly stub: TicketStub;
  readonly stubTtlSeconds: number;
}

/** A transition: its record, and the transfer after it. */
export interface TransferStep {
  readonly transfer: Transfer;
  readonly record: TransitionRecord;
}

/** How many live transfers `TransferStore.listLive` returns at most. */
export const LIVE_LIST_CAP = 1_000;

/**
 * Every transition a TransferStore stores it also publishes, in the same atomic step, as a 'transfer'
 * bus event (an outbox): the feed never shows a transition that was not stored, and never misses one
 * that was, whatever fails between the two.
 */
export interface TransferStore {
  /**
   * Atomically: honours the idempotency key, takes the citizen-call lock, stores the ticket stub, the
   * transfer (as of its last step) and every step's record. On 'replay' or 'call-busy' nothing is
   * written or published, the stub included. Given a lease claim, the lease is taken with the rest.
   */
  create(opening: Opening, options: CreateOptions): Promise<CreateResult>;
  /**
   * Atomically stores consecutive transitions of one transfer, oldest first: the transfer as of the
   * last, and every step's audit record. When the store already holds the first step's version or a
   * later one, nothing is written ('stale'), so retrying a write whose reply was lost is harmless.
   * Terminal states release the call lock and leave the live set. Creates the transfer if the store
   * never saw it (deferred writes).
   */
  save(steps: readonly TransferStep[]): Promise<'saved' | 'stale'>;
  get(transferId: string): Promise<Transfer | null>;
  /** Transfers not yet ended, oldest first, at most LIVE_LIST_CAP (what a supervisor's wall is first shown). */
  listLive(): Promise<Transfer[]>;
  /** The ids of every transfer not yet ended, however many: what looking for orphans walks. */
  liveIds(): Promise<string[]>;
  auditTrail(transferId: string): Promise<TransitionRecord[]>;
}

// ---------------------------------------------------------------- event bus

/**
 * A transition an instance made, as every instance hears of it: the transfer summarised (its caller's
 * number masked). On the Redis bus's stream it is written positionally; the forms earlier versions
 * wrote are read as this too (see adapters/redis/feed-stream-entry.ts).
 */
export interface TransitionBusEvent {
  readonly kind: 'transition';
  readonly transfer: TransferSummary;
  readonly record: TransitionRecord;
}

/**
 * A transition this instance made, with the whole transfer: told to this instance's own observers (call
 * records, metrics) as it is made, never sent to other instances.
 */
export interface TransitionEvent {
  readonly kind: 'transfer';
  readonly transfer: Transfer;
  readonly record: TransitionRecord;
}

/** What this instance's own observers are told: its transitions (whole) and the events it publishes. */
export type ObservedEvent = TransitionEvent | BusEvent;

export function transitionBusEvent(transfer: Transfer, record: TransitionRecord): TransitionBusEvent {
  return { kind: 'transition', transfer: summarise(transfer), record };
}

export type BusEvent =
  | TransitionBusEvent
  | { readonly kind: 'switch'; readonly status: SwitchStatus; readonly at: string }
  | { readonly kind: 'store'; readonly healthy: boolean; readonly detail: string; readonly at: string }
  /** A cancel asked of an instance that does not drive the transfer, for the instance that does. */
  | { readonly kind: 'cancel-requested'; readonly transferId: string; readonly at: string }
  /** A number flagged or unflagged as a nuisance (src/policy); masked, with its keyed hash. */
  | {
      readonly kind: 'nuisance';
      readonly action: 'flagged' | 'unflagged';
      readonly numberHash: string;
      readonly masked: string;
      readonly nuisance: 'malicious' | 'threatening' | 'drunk' | 'repeated' | null;
      readonly at: string;
    }
  /** The receiving desk wrote a ticket's outcome back (反馈回写); the sending desk sees it. */
  | {
      readonly kind: 'feedback';
      readonly ticketId: string;
      readonly transferId: string;
      readonly desk: string;
      readonly outcome: 'accepted' | 'sent-back';
      readonly bounceBack: boolean;
      readonly delaySeconds: number;
      readonly at: string;
    }
  /** A caller advised to dial another hotline or a utility: no call was moved. */
  | {
      readonly kind: 'redirect';
      readonly recordId: string;
      readonly via: 'hotline' | 'utility';
      readonly target: string;
      readonly action: 'transfer' | 'advise';
      readonly at: string;
    };

/** Carries events to every service instance (Redis pub/sub) or within one (memory). */
export interface EventBus {
  publish(event: BusEvent): Promise<void>;
  subscribe(listener: (event: BusEvent) => void): () => void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- leases

/**
 * Which service instance drives a transfer. With several instances on one switch every instance sees
 * every event, so only the lease holder acts on a transfer; when it dies its leases expire and another
 * instance takes the transfers over and settles them from the switch (CallControl.reconcile).
 */
export interface TransferLease {
  /** The instance this lease object acts for. */
  readonly holderId: string;
  /** The lease this instance takes on a transfer it creates, in the create itself (CreateOptions.lease). */
  claim(transferId: string): LeaseClaim;
  /**
   * Takes the lease if nobody holds it, or if this instance already does: an earlier attempt whose reply
   * was lost may have taken it. Callers take it for transfers they do not drive, and for one they
   * created while the store was down, before it is first stored.
   */
  acquire(transferId: string): Promise<boolean>;
  /** Extends the lease; false if this instance no longer holds it (it must stop acting). */
  renew(transferId: string): Promise<boolean>;
  /** Gives the lease up; false if this instance did not hold it. */
  release(transferId: string): Promise<boolean>;
  holder(transferId: string): Promise<string | null>;
  /** Of these transfers, the ones nobody holds a lease on (their instance stopped), asked a hundred at a time. */
  unheld(transferIds: readonly string[]): Promise<string[]>;
  /**
   * Renews every ttl/3 until stopped; calls onLost once if the lease is lost (taken over, or Redis
   * unreachable past the TTL), after which the caller must stop driving the transfer.
   */
  keep(transferId: string, onLost: (reason: string) => void): () => void;
}

// ---------------------------------------------------------------- time and ids

export interface Clock {
  now(): Date;
}
export interface IdSource {
  /** A fresh UUID: transfer ids and FreeSWITCH origination_uuid both use it. */
  uuid(): string;
}

/** A dependency the readiness probe reports on. */
export interface HealthCheck {
  readonly name: string;
  /** False for a dependency transfers do not need (call records): reported, but never makes the instance not ready. */
  readonly critical?: boolean;
  check(): Promise<{ healthy: boolean; detail?: string }>;
}

// ---------------------------------------------------------------- feed log (issue 5)

/** A bus event with its place in the one order every service instance shares. */
export interface SequencedEvent {
  /** Opaque; the same event has the same seq on every instance (a Redis Stream id, or a local counter). */
  readonly seq: string;
  readonly event: BusEvent;
}

/**
 * The bus seen by the live feed: every event in one order, with a sequence, and a bounded history so
 * a client that reconnects can be given what it missed.
 */
export interface FeedLog {
  /** Every event from now on, in order, once each. */
  follow(listener: (event: SequencedEvent) => void): () => void;
  /** The seq of the newest event kept, or null when none is. */
  head(): Promise<string | null>;
  /**
   * The events after `seq` up to and including `upTo`, oldest first; null when `seq` is no longer kept
   * (or never was), so the client must resynchronise from a snapshot.
   */
  since(seq: string, upTo: string, limit: number): Promise<SequencedEvent[] | null>;
  /**
   * Called when this instance may have missed events (its reader came back after the history it had
   * reached was trimmed or lost); the feed then resynchronises its clients.
   */
  onGap?(listener: () => void): () => void;
}
