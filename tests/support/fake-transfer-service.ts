// A small stand-in for the transfer service (src/transfer on main), enough to drive a CallControl the
// way the real one does: it runs the domain's state machine (src/domain/transfer-state.ts), performs
// its effects on the CallControl, and feeds the CallControl's events back in. It keeps every
// transition so tests can assert the "one record" path: a transfer started from SIP becomes a Transfer
// with an audit trail like one started over HTTP.
import type { CallerId } from '../../src/domain/phone-number.js';
import { normaliseCallerNumber } from '../../src/domain/phone-number.js';
import { transition } from '../../src/domain/transfer-state.js';
import type { Transfer, TransferEffect, TransferEvent } from '../../src/domain/transfer.js';
import type { CallControl, CallControlEvent } from '../../src/ports.js';
import type { TransferRequest, TransferRequester } from '../../src/adapters/sip/transfer-requester.js';

export interface DeskDirectory {
  number(desk: string): string;
  trunks(desk: string): string[];
}

export class FakeTransferService implements TransferRequester {
  readonly transfers = new Map<string, Transfer>();
  readonly requests: { input: TransferRequest; idempotencyKey: string | null; principal: string }[] = [];
  readonly trail: { transferId: string; from: string | null; to: string; event: string }[] = [];
  private readonly byKey = new Map<string, string>();
  private seq = 0;
  /** Set to make `request` fail, as the real service does when the ticket store is down for a normal call. */
  failNext: Error | null = null;

  constructor(
    private readonly control: CallControl,
    private readonly desks: DeskDirectory,
    private readonly options: { answerTimeoutSeconds?: number; stubUrlBase?: string } = {},
  ) {
    control.onEvent((event) => this.onEvent(event));
  }

  async request(
    input: TransferRequest,
    opts: { idempotencyKey: string | null; principal: string },
  ): Promise<{ transfer: Transfer; replay: boolean }> {
    this.requests.push({ input, ...opts });
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = null;
      throw err;
    }
    const existing = opts.idempotencyKey ? this.byKey.get(opts.idempotencyKey) : undefined;
    if (existing) return { transfer: this.transfers.get(existing)!, replay: true };
    const id = `tr-${++this.seq}`;
    if (opts.idempotencyKey) this.byKey.set(opts.idempotencyKey, id);
    const normalised = normaliseCallerNumber(input.callerNumber);
    const callerId: CallerId = normalised.ok ? normalised.callerId : { kind: 'withheld' };
    const now = new Date().toISOString();
    const transfer: Transfer = {
      id,
      direction: { from: input.from, to: input.to },
      mode: input.mode,
      priority: input.priority,
      firstReceiver: input.firstReceiver ?? input.from,
      citizenLeg: input.citizenLeg,
      agent: input.agent,
      target: { desk: input.to, number: this.desks.number(input.to), trunks: this.desks.trunks(input.to) },
      presentedCallerId: callerId,
      ticketId: input.ticket.ticketId,
      stubDeferred: false,
      state: 'requested',
      trunkIndex: 0,
      targetLegId: null,
      failure: null,
      endedBy: null,
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
    this.transfers.set(id, transfer);
    this.trail.push({ transferId: id, from: null, to: 'requested', event: 'created' });
    // The stub is stored before any signalling leaves (here: at once).
    this.apply(id, { type: 'stub-stored', deferred: false });
    return { transfer: this.transfers.get(id)!, replay: false };
  }

  private onEvent(event: CallControlEvent): void {
    const t = this.transfers.get(event.transferId);
    if (!t) return;
    switch (event.type) {
      case 'target-ringing':
      case 'target-answered':
        if (t.targetLegId !== event.legId) return;
        this.apply(t.id, { type: event.type });
        return;
      case 'target-failed':
        if (t.targetLegId !== event.legId) return;
        this.apply(t.id, { type: 'target-failed', failure: event.failure, cause: event.cause });
        return;
      case 'bridged':
      case 'conference-joined':
        this.apply(t.id, { type: event.type });
        return;
      case 'party-left':
        this.apply(t.id, { type: 'party-left', party: event.party, cause: event.cause });
        return;
    }
  }

  private apply(id: string, event: TransferEvent): void {
    const t = this.transfers.get(id);
    if (!t) return;
    const result = transition(t, event, new Date().toISOString());
    if (!result.ok) return;
    this.transfers.set(id, result.transfer);
    this.trail.push({ transferId: id, from: t.state, to: result.transfer.state, event: event.type });
    for (const effect of result.effects) void this.perform(result.transfer, effect);
  }

  private async perform(t: Transfer, effect: TransferEffect): Promise<void> {
    try {
      switch (effect.type) {
        case 'place-call': {
          const legId = `${t.id}-leg-${effect.trunkIndex}`;
          this.apply(t.id, { type: 'dial-started', legId });
          await this.control.placeCall({
            transferId: t.id,
            legId,
            citizenLegId: t.citizenLeg.legId,
            agentLegId: t.agent.legId,
            mode: t.mode,
            priority: t.priority,
            sourceDesk: t.direction.from,
            target: { desk: t.target.desk, number: t.target.number, trunk: effect.trunk },
            callerId: t.presentedCallerId,
            ticket: { ticketId: t.ticketId, stubUrl: `${this.options.stubUrlBase ?? 'https://hotline.invalid/v1/tickets'}/${t.ticketId}` },
            answerTimeoutSeconds: this.options.answerTimeoutSeconds ?? 30,
          });
          return;
        }
        case 'bridge-to-target':
          await this.control.bridgeToTarget({ transferId: t.id, citizenLegId: t.citizenLeg.legId, targetLegId: effect.targetLegId });
          return;
        case 'join-conference':
          await this.control.joinConference({ transferId: t.id, citizenLegId: t.citizenLeg.legId, agentLegId: t.agent.legId, targetLegId: effect.targetLegId });
          return;
        case 'release-agent':
          await this.control.releaseAgent({ transferId: t.id, agentLegId: t.agent.legId });
          return;
        case 'hang-up-target':
          await this.control.hangUp({ transferId: t.id, legId: effect.targetLegId, cause: 'transfer ended' });
          return;
        case 'return-to-agent':
          await this.control.returnToAgent({ transferId: t.id, citizenLegId: t.citizenLeg.legId, agentLegId: t.agent.legId, reason: effect.reason });
          return;
        case 'end-call':
          await this.control.hangUp({ transferId: t.id, legId: t.citizenLeg.legId, cause: effect.reason });
          return;
      }
    } catch (err) {
      this.trail.push({ transferId: t.id, from: t.state, to: t.state, event: `effect-failed:${effect.type}:${String(err)}` });
    }
  }

  states(id: string): string[] {
    return this.trail.filter((r) => r.transferId === id).map((r) => r.to);
  }
}
