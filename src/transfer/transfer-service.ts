// The transfer service: the path of one transfer as ARCHITECTURE.md tells it. It validates, stores the
// ticket stub before any signalling leaves, makes a double press one transfer, then drives the state
// machine from switch events and performs its effects. One queue per transfer keeps events in order.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { maskNumber } from '../domain/phone-number.js';
import { TicketStubSchema, type DeskId, type TicketStub } from '../domain/ticket-stub.js';
import type { NuisanceMark } from '../domain/routing-decision.js';
import { isSettled, isTerminal, TARGET_FAILURES, type TargetFailure, type Transfer, type TransferEffect, type TransferEvent } from '../domain/transfer.js';
import { isCancellable, transition } from '../domain/transfer-state.js';
import { AppError } from '../errors.js';
import {
  transitionBusEvent,
  type BusEvent,
  type CallControl,
  type CallControlEvent,
  type Clock,
  type EventBus,
  type IdSource,
  type InFlightLegs,
  type CreateResult,
  type TicketStore,
  type TransferLease,
  type TransferStep,
  type TransferStore,
  type TransitionEvent,
  type TransitionRecord,
} from '../ports.js';
import { DeferredWrites } from './deferred-writes.js';
import { parseTransferRequest, type TransferRequest, type TransferRequestInput } from './transfer-request.js';

export interface DeskDirectory {
  readonly [desk: DeskId]: { readonly number: string; readonly trunks: readonly string[] };
}

export interface TransferServiceSettings {
  readonly ticketTtlSeconds: number;
  readonly answerTimeoutSeconds: number;
  /** Base URL of GET /v1/tickets, sent in Call-Info so the receiving side can fetch the stub. */
  readonly publicBaseUrl: string;
  readonly deferredWriteRetryMs: number;
  /** Extra time past the switch's own answer timeout before the service gives up on a silent leg. */
  readonly answerGuardGraceMs: number;
  /** With a lease: how often to look for transfers whose driving instance died, to take them over. */
  readonly takeoverIntervalMs?: number;
}

/** What a routing policy decides before the stub is stored: the desk to dial and the priority. */
export interface PolicyDecision {
  readonly to: DeskId;
  readonly priority: Transfer['priority'];
  /** Its nuisance mark is null: the mark is looked up once the transfer is stored (`nuisanceMark`). */
  readonly routing: NonNullable<Transfer['routing']>;
}

/** The routing check (src/policy). */
export interface TransferPolicy {
  /** Throws an AppError to refuse; never throws for an emergency. Decided here, with no I/O. */
  decide(request: TransferRequest): PolicyDecision;
  /**
   * Counts this transfer of the caller's number and reads its nuisance flag; null when the lookup
   * failed. Never rejects. It changes nothing about where the call goes, so it runs beside the call.
   */
  nuisanceMark(request: TransferRequest): Promise<NuisanceMark | null>;
}

export interface TransferServiceDeps {
  readonly tickets: TicketStore;
  readonly transfers: TransferStore;
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly ids: IdSource;
  readonly logger: Logger;
  readonly desks: DeskDirectory;
  readonly settings: TransferServiceSettings;
  readonly policy?: TransferPolicy;
  /** Several instances on one store: only the lease holder drives a transfer. None: one instance. */
  readonly lease?: TransferLease;
  /**
   * Told of each transition this instance makes, stored or deferred, as it is made (call records,
   * metrics). The feed learns of transitions from the store, which publishes what it stores.
   */
  readonly onTransition?: (event: TransitionEvent) => void;
}

export interface RequestOptions {
  readonly idempotencyKey: string | null;
  /** Who asked: the API key's name, or the SIP edge. Recorded, never trusted for routing. */
  readonly principal: string;
}

const LOCAL_IDEMPOTENCY_CAP = 10_000;
/** How long a cancel sent to another instance waits for it to land, and how often it looks. */
const CANCEL_WAIT_MS = 2000;
const CANCEL_POLL_MS = 50;

export class TransferService {
  private readonly switches = new Map<string, CallControl>();
  private readonly unsubscribes: (() => void)[] = [];
  /** Transfers this instance drives, until they end. */
  private readonly live = new Map<string, Transfer>();
  /** The same, by the citizen's call: a call may have an ending transfer and the next one. */
  private readonly liveByCall = new Map<string, Set<string>>();
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Switch events waiting at the end of a transfer's queue, applied together (see applyEvents). */
  private readonly gathering = new Map<string, CallControlEvent[]>();
  private readonly answerGuards = new Map<string, NodeJS.Timeout>();
  /** Nuisance lookups started for transfers driven here whose mark is not applied yet. */
  private readonly pendingMarks = new Map<string, Promise<NuisanceMark | null>>();
  /** One child logger per live transfer, made once: pino's child() is not free on the hot path. */
  private readonly loggers = new Map<string, Logger>();
  /** Stops renewing each held lease. */
  private readonly leaseKeepers = new Map<string, () => void>();
  private takeoverTimer: NodeJS.Timeout | null = null;
  /** Idempotency keys seen here, so a double press is one transfer even while the store is down. */
  private readonly localIdempotency = new Map<string, { transferId: string; fingerprint: string }>();
  /**
   * Transfers this process sent to the store without learning whether they were stored (the reply was
   * lost). Only the creator places a transfer's first call, once the store confirms it, so if one of
   * these was stored, nobody placed its call: a retry that finds it places it. By transfer id, the
   * request's fingerprint.
   */
  private readonly unconfirmedCreates = new Map<string, string>();
  private readonly deferred: DeferredWrites;
  private draining = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly deps: TransferServiceDeps) {
    this.deferred = new DeferredWrites({
      tickets: deps.tickets,
      transfers: deps.transfers,
      beforeFirstWrite: (transferId) => this.leaseBeforeFirstWrite(transferId),
      ticketTtlSeconds: deps.settings.ticketTtlSeconds,
      retryMs: deps.settings.deferredWriteRetryMs,
      logger: deps.logger,
      onStoreHealth: (healthy, detail) => void this.publish({ kind: 'store', healthy, detail, at: this.now() }),
    });
    if (deps.lease && deps.settings.takeoverIntervalMs) {
      this.takeoverTimer = setInterval(() => void this.takeOverOrphans(), deps.settings.takeoverIntervalMs);
      this.takeoverTimer.unref();
    }
    // A cancel that reached an instance which does not drive the transfer is carried out here if this
    // instance does (every instance follows the bus).
    this.unsubscribes.push(
      deps.bus.subscribe((event) => {
        if (event.kind === 'cancel-requested' && this.live.has(event.transferId)) {
          void this.enqueue(event.transferId, () => this.applyNow(event.transferId, { type: 'cancel-requested' })).catch(
            (err: unknown) => this.deps.logger.warn({ transferId: event.transferId, err: errorText(err) }, 'cancel for another instance failed'),
          );
        }
      }),
    );
  }

  // ------------------------------------------------------------ switches

  /** Registers a call-control driver; its events drive the transfers it carries. */
  attachSwitch(callControl: CallControl): void {
    this.switches.set(callControl.switchId, callControl);
    this.unsubscribes.push(callControl.onEvent((event) => this.onSwitchEvent(event)));
    let wasConnected = callControl.status().state === 'connected';
    this.unsubscribes.push(
      callControl.onStatus((status) => {
        void this.publish({ kind: 'switch', status, at: this.now() });
        const connected = status.state === 'connected';
        if (connected && !wasConnected) void this.reconcile(callControl);
        wasConnected = connected;
      }),
    );
  }

  switchStatuses() {
    return [...this.switches.values()].map((s) => s.status());
  }

  private pickSwitch(request: TransferRequest): CallControl {
    const wanted = request.citizenLeg.switchId;
    if (wanted !== undefined) {
      const named = this.switches.get(wanted);
      if (!named) throw new AppError('unknown_switch', `no switch named ${wanted} is configured`, { field: 'citizenLeg.switchId' });
      if (named.status().state !== 'connected') {
        throw new AppError('switch_unavailable', `switch ${wanted} is not connected`);
      }
      return named;
    }
    const connected = [...this.switches.values()].filter((s) => s.status().state === 'connected');
    const chosen = connected.find((s) => s.status().desk === request.from) ?? connected[0];
    if (!chosen) throw new AppError('switch_unavailable', 'no call-control driver is connected');
    return chosen;
  }

  // ------------------------------------------------------------ the transfer key

  /**
   * The transfer key for callers that are not the HTTP route (the SIP edge): the raw request is parsed
   * here (a bad field is `invalid_request` naming it), then it is `request`.
   */
  async submit(input: TransferRequestInput, options: RequestOptions): Promise<{ transfer: Transfer; replay: boolean }> {
    return this.request(parseTransferRequest(input), options);
  }

  async request(asked: TransferRequest, options: RequestOptions): Promise<{ transfer: Transfer; replay: boolean }> {
    if (this.draining) throw new AppError('shutting_down', 'this instance is shutting down; retry on another');
    const fingerprint = fingerprintOf(asked);
    if (options.idempotencyKey !== null) {
      const seen = this.localIdempotency.get(options.idempotencyKey);
      if (seen !== undefined) {
        return this.replay(seen.transferId, seen.fingerprint === fingerprint, fingerprint, options.idempotencyKey);
      }
    }
    // The routing check comes first: it may send the call elsewhere (danger → 110) or refuse it.
    const decision = this.deps.policy?.decide(asked) ?? null;
    const request: TransferRequest = decision ? { ...asked, to: decision.to, priority: decision.priority } : asked;

    const from = this.deps.desks[request.from];
    const to = this.deps.desks[request.to];
    if (!from) throw new AppError('unknown_desk', `desk ${request.from} is not configured`, { field: 'from' });
    if (!to) throw new AppError('unknown_desk', `desk ${request.to} is not configured`, { field: 'to' });
    if (request.from === request.to) throw new AppError('same_desk', 'a call is transferred to another desk', { field: 'to' });
    const callControl = this.pickSwitch(request);
    // A switch with its own trunk names (the SIP edge) says how it reaches the desk; else the directory.
    const trunks = callControl.trunksFor?.(request.to) ?? to.trunks;
    if (trunks.length === 0) {
      throw new AppError('unknown_desk', `switch ${callControl.switchId} has no trunk to desk ${request.to}`, { field: 'to' });
    }
    await this.earlierReportsApplied(callControl.switchId, request.citizenLeg.legId);

    const now = this.now();
    const transfer: Transfer = {
      id: this.deps.ids.uuid(),
      direction: { from: request.from, to: request.to },
      mode: request.mode,
      priority: request.priority,
      firstReceiver: request.firstReceiver ?? request.from,
      citizenLeg: { switchId: callControl.switchId, legId: request.citizenLeg.legId },
      agent: { agentId: request.agent.agentId, seatId: request.agent.seatId, legId: request.agent.legId },
      target: { desk: request.to, number: to.number, trunks: [...trunks] },
      presentedCallerId: request.callerNumber,
      ticketId: request.ticket.ticketId,
      stubDeferred: false,
      state: 'requested',
      trunkIndex: 0,
      targetLegId: null,
      failure: null,
      endedBy: null,
      version: 1,
      createdAt: now,
      updatedAt: now,
      ...(decision ? { routing: decision.routing } : {}),
    };
    const stub = this.stubOf(request, now);
    const emergency = request.priority === 'emergency';
    const created: TransitionRecord = {
      transferId: transfer.id,
      at: now,
      from: null,
      to: 'requested',
      event: 'created',
      version: 1,
      detail: `by ${options.principal}`,
    };
    const legId = this.deps.ids.uuid();
    let opening = this.openingOf(transfer, created, legId, false);

    // 1. One atomic write before any signalling: the stub (the receiving seat reads it as its phone
    //    rings), the transfer with its idempotency key and citizen-call lock, its transitions up to
    //    dialling the first trunk (an instance taking over must know the leg), and this instance's
    //    lease: the moment the transfer is stored, other instances may look for orphans.
    const claim = this.deps.lease?.claim(transfer.id);
    let result: CreateResult;
    try {
      result = await this.deps.transfers.create(
        { steps: opening.steps, stub, stubTtlSeconds: this.deps.settings.ticketTtlSeconds },
        { idempotencyKey: options.idempotencyKey, requestFingerprint: fingerprint, ...(claim ? { lease: claim } : {}) },
      );
    } catch (err) {
      if (!emergency) {
        // The create may have been stored with its lease, and only its reply lost.
        void this.deps.lease?.release(transfer.id).catch(() => undefined);
        this.rememberUnconfirmed(transfer.id, fingerprint);
        throw storeUnavailable(err);
      }
      // An emergency is never blocked by a broken store: the stub and the transfer are kept here and
      // written, in order, once the store is back (the lease just before them).
      opening = this.openingOf(transfer, created, legId, true);
      this.deferred.deferStub(stub);
      for (const step of opening.steps) this.deferred.deferTransfer(step.transfer, step.record);
      result = { outcome: 'created' };
    }
    if (result.outcome === 'replay') {
      return this.replay(result.transferId, result.sameRequest, fingerprint, options.idempotencyKey);
    }
    if (result.outcome === 'call-busy') {
      // The call is held by a transfer this process stored without learning it (its reply was lost, the
      // press answered 503), and this press, under a new key, asks the same: it is that press again.
      if (this.unconfirmedCreates.get(result.transferId) === fingerprint) {
        return this.replay(result.transferId, true, fingerprint, options.idempotencyKey);
      }
      throw new AppError('call_already_transferring', 'this call is already being transferred', {
        transferId: result.transferId,
      });
    }

    const dialling = opening.transfer;
    this.drive(dialling, dialling.stubDeferred ? 'once stored' : 'now');
    // 2. Signalling, inside this call, so the answer says whether the switch took the command. The
    //    queue of a transfer just created is empty, so its first call starts at the next microtask;
    //    yielding once here lets it leave before this instance's bookkeeping below (logs, observers,
    //    the nuisance lookup's own write), which took a fifth of a millisecond ahead of it.
    const placed = this.placeFirstCall(callControl, dialling, opening.trunk);
    await null;
    if (options.idempotencyKey !== null) this.rememberKey(options.idempotencyKey, transfer.id, fingerprint);
    const log = this.logFor(dialling);
    log.info(
      { callerId: maskNumber(dialling.presentedCallerId), principal: options.principal, stubDeferred: dialling.stubDeferred },
      'transfer requested',
    );
    for (const { transfer: step, record } of opening.steps) {
      if (record.from !== null) log.info({ from: record.from, to: record.to, event: record.event, detail: record.detail }, 'transfer transition');
      this.announce({ kind: 'transfer', transfer: step, record }, dialling.stubDeferred ? 'deferred' : 'saved');
    }

    // 3. The nuisance mark, looked up only now: it never changes where the call goes, so the call does
    //    not wait for its round trip, and only a transfer that was stored counts as a call.
    const marked = this.markNuisance(dialling.id, request);
    const after = await placed;
    // The answer carries the mark when the store took the transfer; with the store down, not a second wait.
    const latest = dialling.stubDeferred ? null : await marked;
    return { transfer: latest ?? after ?? dialling, replay: false };
  }

  /** Queues the transfer's first call; the transfer once the switch took (or refused) the command. */
  private placeFirstCall(callControl: CallControl, dialling: Transfer, trunk: string): Promise<Transfer | null> {
    return this.enqueue(dialling.id, async () => {
      try {
        await this.placeCall(callControl, dialling, trunk);
        return this.live.get(dialling.id) ?? null;
      } catch (err) {
        const refused = await this.switchRefused(dialling, 'place-call', err);
        return refused.attemptOver ? refused.after : null;
      }
    });
  }

  /** Starts the nuisance lookup and queues its mark behind the transfer's earlier work. */
  private markNuisance(transferId: string, request: TransferRequest): Promise<Transfer | null> {
    if (!this.deps.policy) return Promise.resolve(null);
    this.pendingMarks.set(transferId, this.deps.policy.nuisanceMark(request));
    return this.enqueue(transferId, () => this.applyPendingMark(transferId));
  }

  /** Applies the transfer's nuisance mark once its lookup answers; the transfer as it is then. */
  private async applyPendingMark(transferId: string): Promise<Transfer | null> {
    const lookup = this.pendingMarks.get(transferId);
    this.pendingMarks.delete(transferId);
    const nuisance = lookup === undefined ? null : await lookup;
    if (nuisance === null) return this.live.get(transferId) ?? null;
    return this.applyNow(transferId, { type: 'nuisance-checked', nuisance });
  }

  /**
   * The transitions a new transfer makes before any signalling — created, stub stored, first trunk
   * dialled — applied here so that one write stores them all. Each step is the transfer after its record.
   */
  private openingOf(
    requested: Transfer,
    created: TransitionRecord,
    legId: string,
    stubDeferred: boolean,
  ): { transfer: Transfer; steps: TransferStep[]; trunk: string } {
    const steps = [{ transfer: requested, record: created }];
    let trunk: string | null = null;
    const events: TransferEvent[] = [{ type: 'stub-stored', deferred: stubDeferred }, { type: 'dial-started', legId }];
    for (const event of events) {
      const current = steps[steps.length - 1]!.transfer;
      const result = transition(current, event, requested.createdAt);
      // The state machine's table allows both from a new transfer; a refusal here is a bug in it.
      if (!result.ok) throw new Error(`a new transfer refused ${event.type}: ${result.reason}`);
      for (const effect of result.effects) if (effect.type === 'place-call') trunk = effect.trunk;
      steps.push({ transfer: result.transfer, record: recordOf(current, result.transfer, event) });
    }
    if (trunk === null) throw new Error('a new transfer has no trunk to dial');
    return { transfer: steps[steps.length - 1]!.transfer, steps, trunk };
  }

  /**
   * Switch reports about this call that came before the request are applied before it: a desk that hands
   * a call on (a SIP REFER) first ends the transfer that brought the call there, and that transfer must
   * release the citizen-call lock before the next transfer of the call is created.
   */
  private async earlierReportsApplied(switchId: string, legId: string): Promise<void> {
    const pending: Promise<unknown>[] = [];
    for (const transferId of this.liveByCall.get(callKey(switchId, legId)) ?? []) {
      const queue = this.queues.get(transferId);
      if (queue) pending.push(queue);
    }
    if (pending.length > 0) await Promise.all(pending);
  }

  private async replay(transferId: string, sameRequest: boolean, fingerprint: string, key: string | null) {
    if (!sameRequest) {
      throw new AppError('idempotency_key_reused', 'this Idempotency-Key was used for a different request', {
        transferId,
      });
    }
    if (key !== null) this.rememberKey(key, transferId, fingerprint);
    // A first attempt whose store reply was lost answered 503 and let the transfer go, yet it was stored:
    // nobody drives it. The retry takes it on now rather than leave it to the next takeover round.
    const existing = await this.get(transferId);
    const drivable =
      !isTerminal(existing.state) &&
      !this.live.has(transferId) &&
      (existing.state === 'requested' || this.switches.has(existing.citizenLeg.switchId));
    const neverPlaced = this.unconfirmedCreates.delete(transferId);
    if (!drivable || !(await this.takeLease(transferId))) return { transfer: existing, replay: true };
    // Another retry here may have taken the transfer on while this one waited (a lease this process
    // holds is taken again, see acquire). From this check to drive() nothing waits: one of them drives it.
    const takenMeanwhile = this.live.get(transferId);
    if (takenMeanwhile) return { transfer: takenMeanwhile, replay: true };
    if (existing.state === 'requested') {
      this.drive(existing);
      const resumed = await this.enqueue(transferId, () => this.applyNow(transferId, { type: 'stub-stored', deferred: false }));
      return { transfer: resumed ?? existing, replay: true };
    }
    // This process created it and never learned that it was stored: nobody placed the call. It goes out
    // now, on the leg stored for it. (Otherwise a stored leg may be a placed call: the switch is asked.)
    const callControl = this.switches.get(existing.citizenLeg.switchId);
    const trunk = existing.target.trunks[existing.trunkIndex];
    if (neverPlaced && callControl && trunk !== undefined && isOpeningOnly(existing)) {
      this.drive(existing);
      this.logFor(existing).info({}, 'the retried press places the call its first attempt stored');
      const after = await this.placeFirstCall(callControl, existing, trunk);
      return { transfer: after ?? existing, replay: true };
    }
    await this.adopt([existing]);
    return { transfer: this.live.get(transferId) ?? existing, replay: true };
  }

  /**
   * Takes the lease of a stored transfer this instance does not drive, when instances share a store.
   * False when another instance holds it, or when the store is down (the transfer is left alone then).
   */
  private async takeLease(transferId: string): Promise<boolean> {
    const { lease } = this.deps;
    if (!lease) return true;
    try {
      return await lease.acquire(transferId);
    } catch {
      return false;
    }
  }

  /**
   * This instance drives the transfer from now on, renewing its lease until it stops. A transfer made
   * while the store was down has no lease yet: it is taken just before the transfer is first stored
   * (leaseBeforeFirstWrite), and until then no other instance can know the transfer.
   */
  private drive(transfer: Transfer, lease: 'now' | 'once stored' = 'now'): void {
    if (lease === 'now') this.keepLease(transfer.id);
    this.live.set(transfer.id, transfer);
    const key = callKey(transfer.citizenLeg.switchId, transfer.citizenLeg.legId);
    const onCall = this.liveByCall.get(key) ?? new Set<string>();
    onCall.add(transfer.id);
    this.liveByCall.set(key, onCall);
  }

  private keepLease(transferId: string): void {
    const { lease } = this.deps;
    if (!lease) return;
    // The id only: the transfer this closure would hold is superseded by its next transition, and kept
    // alive with it for the whole call.
    this.leaseKeepers.set(
      transferId,
      lease.keep(transferId, (reason) => {
        const current = this.live.get(transferId);
        if (current) this.logFor(current).warn({ reason }, 'lease lost: this instance stops driving the transfer');
        this.finish(transferId, { release: false });
      }),
    );
  }

  /** Takes the lease of a transfer created while the store was down, before its first write lands. */
  private async leaseBeforeFirstWrite(transferId: string): Promise<void> {
    const { lease } = this.deps;
    if (!lease) return;
    // Throws while the store is still away: the write waits with it.
    const taken = await lease.acquire(transferId);
    const transfer = this.live.get(transferId);
    if (!transfer || this.leaseKeepers.has(transferId)) return;
    if (taken) {
      this.keepLease(transferId);
      return;
    }
    this.logFor(transfer).warn({}, 'lease held by another instance: this instance stops driving the transfer');
    this.finish(transferId, { release: false });
  }

  /** Adopts live transfers whose driving instance died (their lease expired) and settles them. */
  private async takeOverOrphans(): Promise<void> {
    if (this.draining) return;
    const { lease, transfers } = this.deps;
    if (!lease) return;
    const orphans: Transfer[] = [];
    try {
      // Ids first, then the lease keys: only a transfer nobody holds is read, so a round costs the
      // same whether an instance drives ten transfers or ten thousand.
      const others = (await transfers.liveIds()).filter((id) => !this.live.has(id));
      for (const id of await lease.unheld(others)) {
        const transfer = await transfers.get(id);
        if (!transfer || isTerminal(transfer.state) || !this.switches.has(transfer.citizenLeg.switchId)) continue;
        if (await this.takeLease(transfer.id)) orphans.push(transfer);
      }
    } catch {
      // The store is away; what was taken is adopted, the rest waits for the next round.
    }
    await this.adopt(orphans);
  }

  /**
   * Drives stored transfers whose lease this instance has just taken, and asks their switches what
   * became of the legs meanwhile. A leg still ringing is guarded as a new one is: if the switch never
   * reports on it again, the answer timeout returns the citizen to the agent.
   */
  private async adopt(transfers: readonly Transfer[]): Promise<void> {
    const bySwitch = new Map<string, Transfer[]>();
    // One this process took on meanwhile (a retried press) is driven already.
    for (const transfer of transfers.filter((t) => !this.live.has(t.id))) {
      this.drive(transfer);
      this.logFor(transfer).warn({ state: transfer.state }, 'took over a transfer whose instance stopped driving it');
      if ((transfer.state === 'dialing' || transfer.state === 'ringing') && transfer.targetLegId !== null) {
        this.guardAnswer(transfer.id, transfer.targetLegId);
      }
      const onSwitch = bySwitch.get(transfer.citizenLeg.switchId) ?? [];
      onSwitch.push(transfer);
      bySwitch.set(transfer.citizenLeg.switchId, onSwitch);
    }
    for (const [switchId, onSwitch] of bySwitch) {
      const callControl = this.switches.get(switchId);
      if (callControl) await this.reconcile(callControl, onSwitch);
    }
  }

  private rememberUnconfirmed(transferId: string, fingerprint: string): void {
    if (this.unconfirmedCreates.size >= LOCAL_IDEMPOTENCY_CAP) {
      const oldest = this.unconfirmedCreates.keys().next().value;
      if (oldest !== undefined) this.unconfirmedCreates.delete(oldest);
    }
    this.unconfirmedCreates.set(transferId, fingerprint);
  }

  private rememberKey(key: string, transferId: string, fingerprint: string): void {
    if (this.localIdempotency.size >= LOCAL_IDEMPOTENCY_CAP) {
      const oldest = this.localIdempotency.keys().next().value;
      if (oldest !== undefined) this.localIdempotency.delete(oldest);
    }
    this.localIdempotency.set(key, { transferId, fingerprint });
  }

  private stubOf(request: TransferRequest, now: string): TicketStub {
    const parsed = TicketStubSchema.safeParse({
      ...request.ticket,
      sourceDesk: request.from,
      callerNumber: request.callerNumber.kind === 'number' ? request.callerNumber.national : null,
      agentId: request.agent.agentId,
      seatId: request.agent.seatId,
      createdAt: now,
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new AppError('invalid_request', issue?.message ?? 'invalid ticket', {
        field: ['ticket', ...(issue?.path ?? []).map(String)].join('.'),
      });
    }
    return parsed.data;
  }

  // ------------------------------------------------------------ reads and cancel

  async get(transferId: string): Promise<Transfer> {
    const local = this.live.get(transferId) ?? this.deferred.transfer(transferId);
    if (local) return local;
    let stored: Transfer | null;
    try {
      stored = await this.deps.transfers.get(transferId);
    } catch (err) {
      throw storeUnavailable(err);
    }
    if (!stored) throw new AppError('transfer_not_found', `no transfer ${transferId}`);
    return stored;
  }

  async auditTrail(transferId: string): Promise<TransitionRecord[]> {
    await this.get(transferId);
    try {
      return await this.deps.transfers.auditTrail(transferId);
    } catch (err) {
      throw storeUnavailable(err);
    }
  }

  async ticket(ticketId: string): Promise<TicketStub> {
    const waiting = this.deferred.stub(ticketId);
    if (waiting) return waiting;
    let stub: TicketStub | null;
    try {
      stub = await this.deps.tickets.get(ticketId);
    } catch (err) {
      throw storeUnavailable(err);
    }
    if (!stub) throw new AppError('ticket_not_found', `no ticket stub ${ticketId} (never stored, or expired)`);
    return stub;
  }

  async cancel(transferId: string): Promise<Transfer> {
    const current = await this.get(transferId);
    if (isTerminal(current.state)) {
      throw new AppError('cannot_cancel', `the transfer has already ended (${current.state})`);
    }
    // Driven by no instance (the one that did died, and its lease lapsed before a takeover round found
    // it): this instance takes it over, as that round would, and cancels it itself.
    if (!this.live.has(transferId) && this.switches.has(current.citizenLeg.switchId) && (await this.takeLease(transferId))) {
      await this.adopt([current]);
    }
    if (this.live.has(transferId)) {
      const outcome = await this.enqueue(transferId, () =>
        this.applyNow(transferId, { type: 'cancel-requested' }, { refuseWith: 'cannot_cancel' }),
      );
      return outcome ?? current;
    }
    // Another instance drives it (cancelling here would race its switch events): it is asked over the
    // bus, and the answer is what the store then says.
    try {
      await this.deps.bus.publish({ kind: 'cancel-requested', transferId, at: this.now() });
    } catch (err) {
      throw storeUnavailable(err);
    }
    const deadline = Date.now() + CANCEL_WAIT_MS;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, CANCEL_POLL_MS));
      const now = await this.get(transferId);
      if (now.state === 'cancelled') return now;
      if (!isCancellable(now.state)) {
        throw new AppError('cannot_cancel', `the transfer is ${now.state} and can no longer be cancelled`, { state: now.state });
      }
      if (Date.now() >= deadline) {
        throw new AppError('cannot_cancel', 'the instance driving the transfer did not confirm the cancel in time', {
          state: now.state,
        });
      }
    }
  }

  // ------------------------------------------------------------ the state machine's shell

  private enqueue<T>(transferId: string, work: () => Promise<T>): Promise<T> {
    // Work queued after switch events keeps its place behind them: later events gather anew after it.
    this.gathering.delete(transferId);
    const previous = this.queues.get(transferId) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.queues.set(transferId, settled);
    void settled.then(() => {
      if (this.queues.get(transferId) === settled) this.queues.delete(transferId);
    });
    return next;
  }

  /** Applies one event to a transfer this instance drives: the transfer after it (null when it drives none). */
  private async applyNow(transferId: string, event: TransferEvent, options: { refuseWith?: 'cannot_cancel' } = {}): Promise<Transfer | null> {
    return (await this.applyEvents(transferId, [event], options)).transfer;
  }

  /**
   * Applies events to a transfer in order, as far as one write goes: consecutive transitions whose only
   * effects are the last one's are stored together (a switch reporting ringing and answer at once, or
   * events queued behind a slow store), and every effect still runs only once its transition is stored.
   * Returns the transfer after them (null when this instance does not drive it) and how many of the
   * events it applied or refused; the caller applies the rest.
   */
  private async applyEvents(
    transferId: string,
    events: readonly TransferEvent[],
    options: { refuseWith?: 'cannot_cancel' } = {},
  ): Promise<{ transfer: Transfer | null; applied: number }> {
    const current = this.live.get(transferId);
    if (!current) {
      this.deps.logger.debug({ transferId, events: events.map((e) => e.type) }, 'events for a transfer this instance does not drive');
      return { transfer: null, applied: events.length };
    }
    const steps: TransferStep[] = [];
    let effects: readonly TransferEffect[] = [];
    for (const event of events) {
      const before = steps.at(-1)?.transfer ?? current;
      const result = transition(before, event, this.now());
      const endsBeforeItsMark = result.ok && isTerminal(result.transfer.state) && this.pendingMarks.has(transferId);
      // What was gathered is stored first; a refusal or a pending mark is dealt with on the next call.
      if (steps.length > 0 && (!result.ok || endsBeforeItsMark)) break;
      if (endsBeforeItsMark) {
        // A transfer ends with its nuisance mark, so that its call record keeps it: the lookup is one
        // Redis round trip, and a failure (the switch refusing the call at once) is rarely faster.
        await this.applyPendingMark(transferId);
        return this.applyEvents(transferId, events, options);
      }
      if (!result.ok) {
        this.logFor(current).warn({ state: result.state, event: result.event, reason: result.reason }, 'transition refused');
        if (options.refuseWith) throw new AppError(options.refuseWith, result.reason, { state: result.state });
        return { transfer: current, applied: 1 };
      }
      steps.push({ transfer: result.transfer, record: recordOf(before, result.transfer, event) });
      effects = result.effects;
      if (effects.length > 0 || isTerminal(result.transfer.state)) break;
    }
    const next = steps[steps.length - 1]!.transfer;
    this.live.set(transferId, next);
    const persisted = await this.persist(steps);
    if (persisted === 'stale') {
      // Another instance stored this version first (it resumed the transfer too): it drives it, and
      // performing the effects here as well would place the call twice.
      this.logFor(next).info({ events: steps.map((step) => step.record.event) }, 'another instance drives this transfer');
      this.finish(transferId, { release: false });
      return { transfer: await this.deps.transfers.get(transferId).catch(() => null), applied: events.length };
    }
    for (const { transfer, record } of steps) {
      this.logFor(next).info({ from: record.from, to: record.to, event: record.event, detail: record.detail }, 'transfer transition');
      this.announce({ kind: 'transfer', transfer, record }, persisted);
    }

    const refused = await this.perform(next, effects);
    // A refusal's failure may have ended the transfer (it is no longer live): that is the latest.
    const latest = this.live.get(transferId) ?? refused ?? next;
    if (isTerminal(latest.state)) this.finish(transferId, { release: true });
    if (isSettled(latest.state)) this.wakeIdleWaiters();
    return { transfer: latest, applied: steps.length };
  }

  /** 'stale' when the store already holds the first step's version: someone else made this transition. */
  private async persist(steps: readonly TransferStep[]): Promise<'saved' | 'stale' | 'deferred'> {
    const { transfer } = steps[steps.length - 1]!;
    const defer = () => {
      for (const step of steps) this.deferred.deferTransfer(step.transfer, step.record);
      return 'deferred' as const;
    };
    if (this.deferred.holds(transfer.id)) return defer();
    try {
      return await this.deps.transfers.save(steps);
    } catch (err) {
      // A live call never stalls on the store: the write is kept and retried in order.
      this.logFor(transfer).warn({ err: errorText(err) }, 'transfer write deferred: store unavailable');
      return defer();
    }
  }

  /** Runs the effects in order; when the switch refuses one that ends the attempt, the transfer after that. */
  private async perform(transfer: Transfer, effects: readonly TransferEffect[]): Promise<Transfer | null> {
    const callControl = this.switches.get(transfer.citizenLeg.switchId);
    for (const effect of effects) {
      if (!callControl) {
        this.logFor(transfer).error({ effect: effect.type }, 'no driver for the switch holding this call');
        continue;
      }
      try {
        await this.performOne(callControl, transfer, effect);
      } catch (err) {
        const refused = await this.switchRefused(transfer, effect.type, err);
        if (refused.attemptOver) return refused.after;
      }
    }
    return null;
  }

  /**
   * A refused place-call, bridge or join ends that attempt: the remaining effects belonged to it, and the
   * failure brings its own (`after` is the transfer once it is applied).
   */
  private async switchRefused(
    transfer: Transfer,
    effect: TransferEffect['type'],
    err: unknown,
  ): Promise<{ attemptOver: false } | { attemptOver: true; after: Transfer | null }> {
    const failure = failureOf(err);
    this.logFor(transfer).warn({ effect, err: errorText(err), failure }, 'switch refused a command');
    if (effect !== 'place-call' && effect !== 'bridge-to-target' && effect !== 'join-conference') return { attemptOver: false };
    const after = await this.applyNow(transfer.id, { type: 'target-failed', failure, cause: errorText(err).slice(0, 120) });
    return { attemptOver: true, after };
  }

  private async performOne(callControl: CallControl, transfer: Transfer, effect: TransferEffect): Promise<void> {
    const legs = { transferId: transfer.id };
    switch (effect.type) {
      case 'place-call': {
        const legId = this.deps.ids.uuid();
        const dialling = await this.applyNow(transfer.id, { type: 'dial-started', legId });
        if (!dialling || dialling.targetLegId !== legId) return;
        return this.placeCall(callControl, dialling, effect.trunk);
      }
      case 'bridge-to-target':
        return callControl.bridgeToTarget({ ...legs, citizenLegId: transfer.citizenLeg.legId, targetLegId: effect.targetLegId });
      case 'join-conference':
        return callControl.joinConference({
          ...legs,
          citizenLegId: transfer.citizenLeg.legId,
          agentLegId: transfer.agent.legId,
          targetLegId: effect.targetLegId,
        });
      case 'release-agent':
        return callControl.releaseAgent({ ...legs, agentLegId: transfer.agent.legId });
      case 'hang-up-target':
        return callControl.hangUp({ ...legs, legId: effect.targetLegId, cause: 'ORIGINATOR_CANCEL' });
      case 'return-to-agent':
        return callControl.returnToAgent({
          ...legs,
          citizenLegId: transfer.citizenLeg.legId,
          agentLegId: transfer.agent.legId,
          reason: effect.reason,
        });
      case 'end-call':
        if (transfer.targetLegId !== null) {
          await callControl.hangUp({ ...legs, legId: transfer.targetLegId, cause: 'NORMAL_CLEARING' });
        }
        return;
    }
  }

  /** Sends the call for the leg the transfer is dialling; its leg id was stored before this. */
  private async placeCall(callControl: CallControl, dialling: Transfer, trunk: string): Promise<void> {
    const legId = dialling.targetLegId;
    if (legId === null) throw new Error(`transfer ${dialling.id} has no leg to dial`);
    this.guardAnswer(dialling.id, legId);
    await callControl.placeCall({
      transferId: dialling.id,
      legId,
      citizenLegId: dialling.citizenLeg.legId,
      agentLegId: dialling.agent.legId,
      mode: dialling.mode,
      priority: dialling.priority,
      sourceDesk: dialling.direction.from,
      target: { desk: dialling.target.desk, number: dialling.target.number, trunk },
      callerId: dialling.presentedCallerId,
      ticket: {
        ticketId: dialling.ticketId,
        stubUrl: `${this.deps.settings.publicBaseUrl.replace(/\/$/, '')}/v1/tickets/${encodeURIComponent(dialling.ticketId)}`,
      },
      answerTimeoutSeconds: this.deps.settings.answerTimeoutSeconds,
    });
  }

  /** A leg the switch never reports on again (a lost event) must not hold the citizen forever. */
  private guardAnswer(transferId: string, legId: string): void {
    this.clearGuard(transferId);
    const timer = setTimeout(() => {
      this.answerGuards.delete(transferId);
      void this.enqueue(transferId, async () => {
        const current = this.live.get(transferId);
        if (!current || current.targetLegId !== legId || (current.state !== 'dialing' && current.state !== 'ringing')) {
          return null;
        }
        const callControl = this.switches.get(current.citizenLeg.switchId);
        await callControl?.hangUp({ transferId, legId, cause: 'NO_ANSWER' }).catch(() => undefined);
        return this.applyNow(transferId, { type: 'target-failed', failure: 'no-answer', cause: 'SERVICE_ANSWER_TIMEOUT' });
      });
    }, this.deps.settings.answerTimeoutSeconds * 1000 + this.deps.settings.answerGuardGraceMs);
    timer.unref();
    this.answerGuards.set(transferId, timer);
  }

  private clearGuard(transferId: string): void {
    const timer = this.answerGuards.get(transferId);
    if (timer) clearTimeout(timer);
    this.answerGuards.delete(transferId);
  }

  /** This instance stops driving the transfer; its lease is given up when it ended here. */
  private finish(transferId: string, options: { release: boolean }): void {
    this.clearGuard(transferId);
    this.pendingMarks.delete(transferId);
    const transfer = this.live.get(transferId);
    if (transfer) {
      const key = callKey(transfer.citizenLeg.switchId, transfer.citizenLeg.legId);
      const onCall = this.liveByCall.get(key);
      onCall?.delete(transferId);
      if (onCall?.size === 0) this.liveByCall.delete(key);
    }
    this.live.delete(transferId);
    this.loggers.delete(transferId);
    const stopKeeping = this.leaseKeepers.get(transferId);
    if (stopKeeping) {
      stopKeeping();
      this.leaseKeepers.delete(transferId);
      if (options.release) void this.deps.lease?.release(transferId).catch(() => undefined);
    }
  }

  private unsettledCount(): number {
    let count = 0;
    for (const t of this.live.values()) if (!isSettled(t.state)) count += 1;
    return count;
  }

  private wakeIdleWaiters(): void {
    if (this.idleWaiters.length === 0 || this.unsettledCount() > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private onSwitchEvent(event: CallControlEvent): void {
    const { transferId } = event;
    if (!this.live.has(transferId)) return; // driven by another instance, or already ended
    const gathering = this.gathering.get(transferId);
    if (gathering) {
      gathering.push(event);
      return;
    }
    const events = [event];
    void this.enqueue(transferId, () => {
      if (this.gathering.get(transferId) === events) this.gathering.delete(transferId);
      return this.applySwitchEvents(transferId, events);
    }).catch((err: unknown) => this.deps.logger.error({ err: errorText(err), transferId }, 'switch event failed'));
    this.gathering.set(transferId, events);
  }

  /** Applies switch events that came while the transfer's queue was busy, in as few writes as they allow. */
  private async applySwitchEvents(transferId: string, events: readonly CallControlEvent[]): Promise<Transfer | null> {
    let latest: Transfer | null = null;
    for (let rest = events; rest.length > 0; ) {
      const current = this.live.get(transferId);
      if (!current) return latest;
      // A late report from an earlier trunk's leg: that attempt is over. Checked again after every write,
      // as a write's effects may dial another leg.
      const forThisLeg = (e: CallControlEvent) => !('legId' in e) || e.legId === current.targetLegId;
      const leading = rest.findIndex((e) => !forThisLeg(e));
      const run = leading === -1 ? rest : rest.slice(0, leading);
      if (run.length === 0) {
        this.logFor(current).debug({ event: rest[0]!.type }, 'event for a leg no longer dialled');
        latest = current;
        rest = rest.slice(1);
        continue;
      }
      for (const e of run) if (e.type === 'target-answered' || e.type === 'target-failed') this.clearGuard(transferId);
      const { transfer, applied } = await this.applyEvents(transferId, run.map(toTransferEvent));
      latest = transfer;
      rest = rest.slice(applied);
    }
    return latest;
  }

  /** Asks the switch what became of these transfers' legs (all it carries, by default). */
  private async reconcile(
    callControl: CallControl,
    transfers: readonly Transfer[] = [...this.live.values()].filter((t) => t.citizenLeg.switchId === callControl.switchId),
  ): Promise<void> {
    const inFlight: InFlightLegs[] = transfers.map((t) => ({
        transferId: t.id,
        state: t.state,
        mode: t.mode,
        citizenLegId: t.citizenLeg.legId,
        agentLegId: t.agent.legId,
        targetLegId: t.targetLegId,
      }));
    if (inFlight.length === 0) return;
    try {
      await callControl.reconcile(inFlight);
    } catch (err) {
      this.deps.logger.warn({ err: errorText(err), switchId: callControl.switchId }, 'reconcile failed');
    }
  }

  // ------------------------------------------------------------ lifecycle

  get liveCount(): number {
    return this.live.size;
  }

  pendingWrites(): { transfers: number; stubs: number } {
    return this.deferred.counts();
  }

  /**
   * Stops taking transfers; resolves when every transfer this instance drives is settled (bridged,
   * conferenced or ended) or the deadline passes.
   */
  async drain(deadlineMs: number): Promise<{ unfinished: number }> {
    this.draining = true;
    if (this.unsettledCount() > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadlineMs);
        timer.unref();
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await this.deferred.flush();
    return { unfinished: this.unsettledCount() };
  }

  get isDraining(): boolean {
    return this.draining;
  }

  async close(): Promise<void> {
    if (this.takeoverTimer) clearInterval(this.takeoverTimer);
    // Hand what is still live (bridged calls, mostly) to the other instances at once, not after a TTL.
    const held = [...this.leaseKeepers.keys()];
    for (const transferId of held) this.finish(transferId, { release: false });
    const { lease } = this.deps;
    if (lease) await Promise.allSettled(held.map((transferId) => lease.release(transferId)));
    for (const unsubscribe of this.unsubscribes) unsubscribe();
    for (const timer of this.answerGuards.values()) clearTimeout(timer);
    this.answerGuards.clear();
    this.deferred.stop();
  }

  private now(): string {
    return this.deps.clock.now().toISOString();
  }

  /**
   * The store published what it stored; a deferred transition this instance's own feed clients see now
   * (other instances, once it is written). Local observers hear of both.
   */
  private announce(event: TransitionEvent, persisted: 'saved' | 'deferred'): void {
    if (persisted === 'deferred') void this.publish(transitionBusEvent(event.transfer, event.record));
    try {
      this.deps.onTransition?.(event);
    } catch (err) {
      this.deps.logger.error({ err: errorText(err), transferId: event.transfer.id }, 'a transition observer failed');
    }
  }

  private async publish(event: BusEvent): Promise<void> {
    try {
      await this.deps.bus.publish(event);
    } catch (err) {
      this.deps.logger.warn({ err: errorText(err), kind: event.kind }, 'bus publish failed');
    }
  }

  private logFor(transfer: Transfer): Logger {
    const cached = this.loggers.get(transfer.id);
    if (cached) return cached;
    const logger = this.deps.logger.child({
      transferId: transfer.id,
      direction: `${transfer.direction.from}->${transfer.direction.to}`,
      mode: transfer.mode,
      priority: transfer.priority,
    });
    if (this.live.has(transfer.id)) this.loggers.set(transfer.id, logger);
    return logger;
  }
}

function callKey(switchId: string, legId: string): string {
  return `${switchId}\u0000${legId}`;
}

function toTransferEvent(event: CallControlEvent): TransferEvent {
  switch (event.type) {
    case 'target-ringing':
      return { type: 'target-ringing' };
    case 'target-answered':
      return { type: 'target-answered' };
    case 'target-failed':
      return { type: 'target-failed', failure: event.failure, cause: event.cause };
    case 'bridged':
      return { type: 'bridged' };
    case 'conference-joined':
      return { type: 'conference-joined' };
    case 'party-left':
      return { type: 'party-left', party: event.party, cause: event.cause };
  }
}

/** The transfer as the atomic create stores it (created, stub stored, first trunk dialled), and no further. */
function isOpeningOnly(t: Transfer): boolean {
  return t.state === 'dialing' && t.version === 3 && t.trunkIndex === 0 && t.targetLegId !== null;
}

function recordOf(current: Transfer, next: Transfer, event: TransferEvent): TransitionRecord {
  const detail = detailOf(event);
  return {
    transferId: next.id,
    at: next.updatedAt,
    from: current.state,
    to: next.state,
    event: event.type,
    version: next.version,
    ...(detail ? { detail } : {}),
  };
}

function detailOf(event: TransferEvent): string | undefined {
  switch (event.type) {
    case 'target-failed':
      return `${event.failure}: ${event.cause}`;
    case 'party-left':
      return `${event.party}: ${event.cause}`;
    case 'stub-stored':
      return event.deferred ? 'stub deferred: store unavailable' : undefined;
    default:
      return undefined;
  }
}

/** A driver may throw an error carrying a TargetFailure (a gateway that does not exist is trunk-down). */
function failureOf(err: unknown): TargetFailure {
  const failure = (err as { failure?: unknown } | null)?.failure;
  return typeof failure === 'string' && (TARGET_FAILURES as readonly string[]).includes(failure)
    ? (failure as TargetFailure)
    : 'switch-error';
}

function fingerprintOf(request: TransferRequest): string {
  return createHash('sha256').update(JSON.stringify(request)).digest('base64url');
}

function storeUnavailable(err: unknown): AppError {
  return new AppError('store_unavailable', `the transfer store is unavailable: ${errorText(err)}`);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
