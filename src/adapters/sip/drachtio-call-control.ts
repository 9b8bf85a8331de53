// The SIP edge on drachtio: a CallControl for the transfer service, plus the handlers that turn SIP into
// transfer requests. Two ways a transfer starts here:
//  1. An INVITE from a peer PBX/switch across the 12345–110 trunk. The edge asks the transfer service
//     for a transfer (the stub is stored first); the service then calls placeCall, and the edge
//     re-originates the call with createB2BUA to the trunk the service names, trying the next trunk when
//     the service says so. The caller's leg stays unanswered until the other desk answers.
//  2. A REFER from the agent's side of an established call (RFC 3515). The edge answers 202, asks the
//     service for a transfer of the citizen's leg, and on placeCall dials the new desk with createUAC,
//     reporting progress as NOTIFY message/sipfrag. On success the citizen is re-INVITEd to the new party
//     and the agent's leg released; on failure the citizen stays with the agent.
// The SIP decisions (trust, identity, headers, targets, status mapping) live in sip-policy.ts,
// sip-message.ts and sip-status.ts; this file only applies them.
import type { Logger } from 'pino';
import { maskNumber, normaliseCallerNumber, type CallerId } from '../../domain/phone-number.js';
import type { DeskId } from '../../domain/ticket-stub.js';
import type { FailureReason, Priority, TargetFailure } from '../../domain/transfer.js';
import type {
  CallControl,
  CallControlEvent,
  HealthCheck,
  IdSource,
  InFlightLegs,
  PlaceCallRequest,
  SwitchStatus,
} from '../../ports.js';
import { DrachtioConnection } from './drachtio-connection.js';
import { findTrunk, type Peer, type SipEdgeConfig } from './sip-edge-config.js';
import { checkOffer, headerValues, validateRequest, type SipRejection } from './sip-message.js';
import {
  citizenIdentity,
  findPeer,
  inboundTransferRequest,
  inviteTarget,
  legHeaders,
  nextMaxForwards,
  priorityOf,
  referTarget,
  referredByOf,
  targetUri,
  ticketIdOf,
  wantsPrivacy,
} from './sip-policy.js';
import { failureForStatus, reasonPhrase, referNotify, statusForFailure } from './sip-status.js';
import type { B2buaOptions, SipErrorShape, SrfDialog, SrfLike, SrfMessage, SrfRequest, SrfResponse } from './srf-shapes.js';
import type { TransferRequest, TransferRequester } from './transfer-requester.js';

export class SipEdgeError extends Error {
  constructor(
    readonly code: 'LEG_NOT_FOUND' | 'NOT_SUPPORTED' | 'NOT_CONNECTED',
    message: string,
  ) {
    super(message);
    this.name = 'SipEdgeError';
  }
}

export interface DrachtioCallControlDeps {
  readonly config: SipEdgeConfig;
  /** The transfer service (its `request`); set later with `attach` when built after the edge. */
  readonly transfers?: TransferRequester;
  readonly ids: IdSource;
  readonly logger: Logger;
  /** The desk this service instance sits for in status reports. */
  readonly desk?: DeskId;
}

/** A createB2BUA or createUAC attempt towards the other desk. */
interface Attempt {
  readonly legId: string;
  readonly transferId: string;
  readonly targetDesk: DeskId;
  uacReq: SrfRequest | null;
  timer: NodeJS.Timeout | null;
  /** Set once target-failed or target-answered was reported, so a late CANCEL's 487 is not reported again. */
  settled: boolean;
  answered: boolean;
  timedOut: boolean;
  lastStatus: number | null;
  dialog: SrfDialog | null;
  b2bua: Promise<{ uas: SrfDialog; uac: SrfDialog }> | null;
}

/** Context that travels with a call through later transfers: the citizen's number and the ticket. */
interface CallContext {
  readonly callerId: CallerId;
  /** For the first leg only: the caller's Max-Forwards less one. */
  readonly maxForwards?: number;
  /** The caller asked for Privacy: id (RFC 3323). */
  readonly privacy: boolean;
  readonly ticket: TransferRequest['ticket'];
  readonly priority: Priority;
  readonly firstReceiver: DeskId;
}

/** An INVITE from a peer that waits for the transfer's outcome. */
interface InboundInvite {
  readonly citizenLegId: string;
  readonly req: SrfRequest;
  readonly res: SrfResponse;
  readonly peer: Peer;
  readonly context: CallContext;
  transferId: string | null;
  attempt: Attempt | null;
  cancelled: boolean;
  responded: boolean;
  lastFailureStatus: number | null;
  readonly log: Logger;
}

interface ReferInProgress {
  /** The dialog the REFER came on: NOTIFYs go there (RFC 3515 §2.4.4). */
  readonly referrer: SrfDialog;
  readonly referredBy: string;
  readonly targetDesk: DeskId;
  transferId: string | null;
  attempt: Attempt | null;
  notified: Set<number>;
  /** A final NOTIFY ended the subscription (RFC 6665 §4.1.3): nothing more may be sent on it. */
  finalSent: boolean;
  finished: boolean;
  giveUp: NodeJS.Timeout | null;
}

/** An established call: the citizen's dialog and the dialog of whoever the citizen talks to. */
interface Call {
  readonly citizenLegId: string;
  citizen: SrfDialog;
  agentSide: SrfDialog;
  agentDesk: DeskId;
  agentId: string;
  /** The transfer that owns the call now (the last one that connected it). */
  transferId: string;
  readonly context: CallContext;
  refer: ReferInProgress | null;
  readonly log: Logger;
}

const AGENT_ID = /^[0-9A-Za-z_-]{1,32}$/;

/**
 * The SIP answer when the transfer service throws: its client errors (a 4xx statusCode, e.g. a routing
 * rule refusing the transfer) are a refusal, 403 with the error's code; anything else is 503.
 */
export function refusalFor(err: unknown): SipRejection {
  const e = err as { statusCode?: unknown; code?: unknown };
  const code = typeof e.code === 'string' && /^[A-Z0-9_]{1,64}$/.test(e.code) ? e.code : null;
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: 403, reason: 'Forbidden', warning: `transfer refused${code ? ` (${code})` : ''}` };
  }
  return { status: 503, reason: 'Service Unavailable', warning: `the transfer could not be started${code ? ` (${code})` : ''}` };
}

/** A URI user for a log line: a phone number masked, a short extension or desk number as is. */
function maskUser(user: string | null): string | null {
  if (user === null) return null;
  const n = normaliseCallerNumber(user);
  if (n.ok) return maskNumber(n.callerId);
  return /^[0-9A-Za-z_-]{1,6}$/.test(user) ? user : '***';
}

export class DrachtioCallControl implements CallControl {
  readonly switchId: string;
  readonly connection: DrachtioConnection;
  private readonly srf: SrfLike;
  private readonly config: SipEdgeConfig;
  private readonly ids: IdSource;
  private readonly log: Logger;
  private readonly desk: DeskId;
  private transfers: TransferRequester | null;
  private readonly eventListeners = new Set<(event: CallControlEvent) => void>();
  private readonly statusListeners = new Set<(status: SwitchStatus) => void>();
  private readonly inbound = new Map<string, InboundInvite>();
  /** Calls by citizen leg id, and by every dialog id in them. */
  private readonly calls = new Map<string, Call>();
  private readonly callsByDialog = new Map<string, Call>();
  private readonly attempts = new Map<string, { attempt: Attempt; owner: InboundInvite | Call }>();
  private started = false;

  constructor(deps: DrachtioCallControlDeps) {
    this.config = deps.config;
    this.switchId = deps.config.switchId;
    this.ids = deps.ids;
    this.log = deps.logger.child({ component: 'sip-edge' });
    this.desk = deps.desk ?? Object.keys(deps.config.desks)[0] ?? 'sip';
    this.transfers = deps.transfers ?? null;
    this.connection = new DrachtioConnection(deps.config.drachtio, this.log);
    this.srf = this.connection.srf;
    this.connection.onStatus(() => {
      const status = this.status();
      for (const listener of this.statusListeners) listener(status);
    });
  }

  /** Wires the transfer service in when it is built after this adapter (it needs the CallControl). */
  attach(transfers: TransferRequester): void {
    this.transfers = transfers;
  }

  /** Registers the SIP handlers and connects to drachtio-server. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.srf.invite((req, res) => {
      this.onInvite(req, res).catch((err: unknown) => this.crashGuard(err, res, 'INVITE'));
    });
    // In-dialog REFERs reach the dialog's 'refer' listener first; one landing here has no dialog.
    this.srf.use('refer', (req, res) => {
      this.reject(res, { status: 481, reason: reasonPhrase(481), warning: 'REFER outside a dialog is not accepted' });
      this.log.info({ source: req.source_address }, 'REFER outside a dialog refused');
    });
    // Trunk keep-alives from the PBXs.
    this.srf.use('options', (req, res) => {
      if (findPeer(this.config, req.source_address)) res.send(200);
      else this.reject(res, { status: 403, reason: 'Forbidden', warning: 'not a configured peer' });
    });
    this.connection.connect();
  }

  status(): SwitchStatus {
    const c = this.connection.status();
    return {
      switchId: this.switchId,
      kind: 'drachtio',
      desk: this.desk,
      state: c.state,
      ...(c.detail === undefined ? {} : { detail: c.detail }),
    };
  }

  /** For /health/ready: healthy while the drachtio-server link is up and authenticated. */
  healthCheck(): HealthCheck {
    return {
      name: `drachtio:${this.switchId}`,
      check: async () => {
        const s = this.connection.status();
        return { healthy: s.state === 'connected', ...(s.detail === undefined ? {} : { detail: `${s.state}: ${s.detail}` }) };
      },
    };
  }

  onEvent(listener: (event: CallControlEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  onStatus(listener: (status: SwitchStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** INVITEs, calls and legs still held; 0 means the process can drain (and nothing leaked). */
  liveCount(): number {
    return this.inbound.size + this.calls.size + this.callsByDialog.size + this.attempts.size + this.released.size;
  }

  async close(): Promise<void> {
    for (const { attempt } of this.attempts.values()) if (attempt.timer) clearTimeout(attempt.timer);
    for (const call of this.calls.values()) if (call.refer?.giveUp) clearTimeout(call.refer.giveUp);
    await this.connection.close();
  }

  // ------------------------------------------------------------ CallControl commands

  async placeCall(request: PlaceCallRequest): Promise<void> {
    const trunk = findTrunk(this.config, request.target.trunk);
    if (!trunk) throw new SipEdgeError('LEG_NOT_FOUND', `no trunk named ${request.target.trunk}`);
    const attempt: Attempt = {
      legId: request.legId,
      transferId: request.transferId,
      targetDesk: request.target.desk,
      uacReq: null,
      timer: null,
      settled: false,
      answered: false,
      timedOut: false,
      lastStatus: null,
      dialog: null,
      b2bua: null,
    };
    const inbound = this.inbound.get(request.citizenLegId);
    const call = this.calls.get(request.citizenLegId);
    const owner = inbound ?? call;
    if (!owner) throw new SipEdgeError('LEG_NOT_FOUND', `no SIP leg ${request.citizenLegId}`);
    if (request.mode !== 'blind') {
      throw new SipEdgeError('NOT_SUPPORTED', 'the SIP edge does blind transfers; three-way calls need a conference bridge');
    }
    this.attempts.set(request.legId, { attempt, owner });
    const referredBy = call?.refer?.referredBy ?? null;
    const headers = legHeaders({
      privacy: owner.context.privacy,
      ...(inbound && inbound.context.maxForwards !== undefined ? { maxForwards: inbound.context.maxForwards } : {}),
      config: this.config,
      trunk,
      callerId: request.callerId,
      sourceDesk: request.sourceDesk,
      targetNumber: request.target.number,
      priority: request.priority,
      ticket: request.ticket,
      referredBy,
    });
    const uri = targetUri(trunk, request.target.number);
    const log = owner.log.child({ transferId: request.transferId, legId: request.legId, trunk: trunk.name });
    log.info({ caller: maskNumber(request.callerId), target: request.target.desk }, 'placing call to the other desk');

    if (this.connection.status().state !== 'connected') {
      // Reported like a trunk that is down, so the service moves on to the next trunk or fails cleanly.
      setImmediate(() => this.failAttempt(attempt, 503, 'drachtio-server not connected'));
      return;
    }
    const timeoutMs = request.answerTimeoutSeconds * 1000;
    const onRequest = (err: unknown, uacReq: SrfRequest) => {
      if (err) return; // the rejection path reports it
      attempt.uacReq = uacReq;
      if (attempt.settled) {
        // Given up (the caller's CANCEL, a hang-up) before the INVITE was even on the wire.
        try {
          uacReq.cancel();
        } catch {
          // already final
        }
        return;
      }
      attempt.timer = setTimeout(() => {
        if (attempt.settled) return;
        attempt.timedOut = true;
        log.info('no answer in time; cancelling');
        this.failAttempt(attempt, 'timeout', `no answer within ${request.answerTimeoutSeconds} s`);
        try {
          uacReq.cancel();
        } catch (cancelErr) {
          log.warn({ err: cancelErr }, 'CANCEL failed');
        }
      }, timeoutMs);
    };
    const onProvisional = (res: SrfMessage) => {
      const status = res.status ?? 0;
      if (status > 100 && status < 200 && !attempt.settled) {
        this.emit({ type: 'target-ringing', transferId: attempt.transferId, legId: attempt.legId });
        if (call?.refer && !call.refer.notified.has(status)) {
          call.refer.notified.add(status);
          void this.notifyReferrer(call, status, res.reason);
        }
      }
    };

    if (inbound) {
      this.placeB2bua(inbound, attempt, uri, headers, { onRequest, onProvisional }, log);
    } else if (call) {
      this.placeReferLeg(call, attempt, uri, headers, { onRequest, onProvisional }, log);
    }
  }

  private placeB2bua(
    inbound: InboundInvite,
    attempt: Attempt,
    uri: string,
    headers: Record<string, string>,
    cb: { onRequest: (err: unknown, req: SrfRequest) => void; onProvisional: (res: SrfMessage) => void },
    log: Logger,
  ): void {
    inbound.attempt = attempt;
    const before = { cancel: inbound.req.listeners('cancel'), update: inbound.req.listeners('update') };
    const options: B2buaOptions = {
      headers,
      // Only harmless context is copied; identity and ticket headers are always ours (a listed header
      // would overwrite the one we set).
      proxyRequestHeaders: ['Subject'],
      proxyResponseHeaders: ['X-Agent-Id'],
      // Failures come back to the service, which picks the next trunk or gives up (returnToAgent).
      passFailure: false,
      passProvisionalResponses: true,
    };
    attempt.b2bua = this.srf.createB2BUA(inbound.req, inbound.res, uri, options, {
      cbRequest: cb.onRequest,
      cbProvisional: cb.onProvisional,
      cbFinalizedUac: (uac) => {
        if (attempt.settled) {
          // A 200 that crossed our CANCEL (timeout or hang-up): the service has moved on, so this leg
          // must not answer the caller. Release it; throwing here stops createB2BUA before its 200 to A.
          void uac.destroy().catch(() => undefined);
          throw new SipEdgeError('LEG_NOT_FOUND', 'late answer after the attempt was given up');
        }
        this.answerAttempt(attempt);
      },
    });
    attempt.b2bua.then(
      ({ uas, uac }) => {
        this.clearAttemptTimer(attempt);
        inbound.responded = true;
        this.inbound.delete(inbound.citizenLegId);
        const agentHeader = uac.res.get('X-Agent-Id');
        const call: Call = {
          citizenLegId: inbound.citizenLegId,
          citizen: uas,
          agentSide: uac,
          agentDesk: attempt.targetDesk,
          agentId: agentHeader !== undefined && AGENT_ID.test(agentHeader) ? agentHeader : attempt.targetDesk,
          transferId: attempt.transferId,
          context: inbound.context,
          refer: null,
          log: inbound.log,
        };
        this.attempts.set(attempt.legId, { attempt, owner: call });
        attempt.dialog = uac;
        this.adoptCall(call);
        log.info('call connected across the trunk');
      },
      (err: SipErrorShape & Error) => {
        this.clearAttemptTimer(attempt);
        // createB2BUA added its own CANCEL/UPDATE listeners for this attempt; the next trunk adds new ones.
        for (const l of inbound.req.listeners('cancel')) if (!before.cancel.includes(l)) inbound.req.off('cancel', l as () => void);
        for (const l of inbound.req.listeners('update')) if (!before.update.includes(l)) inbound.req.off('update', l as () => void);
        const status = typeof err.status === 'number' ? err.status : 500;
        if (inbound.cancelled) return; // reported as party-left by the CANCEL handler
        if (attempt.answered) {
          // The other desk answered but the caller's leg could not be: srf has released the B leg.
          this.emit({ type: 'target-failed', transferId: attempt.transferId, legId: attempt.legId, failure: 'switch-error', cause: `answering the caller failed: ${err.message}` });
          return;
        }
        if (attempt.settled) return; // our own CANCEL (timeout or hang-up) ended it; already reported
        if (status >= 300) inbound.lastFailureStatus = status;
        log.info({ status }, 'the other desk did not take the call');
        this.failAttempt(attempt, status, `SIP ${status} ${err.reason ?? err.message ?? ''}`.trim());
      },
    );
  }

  private placeReferLeg(
    call: Call,
    attempt: Attempt,
    uri: string,
    headers: Record<string, string>,
    cb: { onRequest: (err: unknown, req: SrfRequest) => void; onProvisional: (res: SrfMessage) => void },
    log: Logger,
  ): void {
    if (call.refer) call.refer.attempt = attempt;
    this.srf
      .createUAC(uri, { headers, localSdp: call.citizen.remote.sdp }, { cbRequest: cb.onRequest, cbProvisional: cb.onProvisional })
      .then(
        (dialog) => {
          this.clearAttemptTimer(attempt);
          if (attempt.settled || call.refer === null) {
            // Answered after we gave up (timeout) or after the citizen left: release it.
            void dialog.destroy().catch(() => undefined);
            return;
          }
          attempt.dialog = dialog;
          this.callsByDialog.set(dialog.id, call);
          dialog.on('destroy', () => this.onTargetLeftEarly(call, attempt));
          log.info('the new desk answered the referred call');
          this.answerAttempt(attempt);
          if (call.refer) void this.notifyReferrer(call, 200, 'OK');
        },
        (err: SipErrorShape & Error) => {
          this.clearAttemptTimer(attempt);
          const status = typeof err.status === 'number' ? err.status : 500;
          log.info({ status }, 'the new desk did not take the referred call');
          this.failAttempt(attempt, status, `SIP ${status} ${err.reason ?? err.message ?? ''}`.trim());
        },
      );
  }

  async bridgeToTarget(legs: { transferId: string; citizenLegId: string; targetLegId: string }): Promise<void> {
    const entry = this.attempts.get(legs.targetLegId);
    if (!entry) throw new SipEdgeError('LEG_NOT_FOUND', `no SIP leg ${legs.targetLegId}`);
    const { attempt } = entry;
    if (attempt.b2bua) {
      // createB2BUA answers the caller itself once the other desk answers: the bridge is that 200 OK.
      attempt.b2bua.then(
        () => this.emit({ type: 'bridged', transferId: legs.transferId }),
        () => undefined, // reported as target-failed or party-left already
      );
      return;
    }
    const call = this.calls.get(legs.citizenLegId);
    const target = attempt.dialog;
    if (!call || !target) throw new SipEdgeError('LEG_NOT_FOUND', `no answered leg ${legs.targetLegId}`);
    try {
      // RFC 3515 blind transfer done by a B2BUA: the citizen gets the new party's SDP by re-INVITE.
      await call.citizen.modify(target.remote.sdp);
    } catch (err) {
      call.log.warn({ err }, 're-INVITE of the citizen failed');
      this.emit({ type: 'target-failed', transferId: legs.transferId, legId: legs.targetLegId, failure: 'switch-error', cause: 're-INVITE of the citizen failed' });
      return;
    }
    const agentSide = call.agentSide;
    call.agentSide = target;
    call.citizen.other = target;
    target.other = call.citizen;
    target.removeAllListeners('destroy');
    this.wireDialog(call, target);
    call.agentDesk = attempt.targetDesk;
    const agentHeader = target.res.get('X-Agent-Id');
    call.agentId = agentHeader !== undefined && AGENT_ID.test(agentHeader) ? agentHeader : attempt.targetDesk;
    call.transferId = legs.transferId;
    // The agent's old leg stays until releaseAgent; remember it for that.
    this.released.set(legs.transferId, { dialog: agentSide, call });
    this.emit({ type: 'bridged', transferId: legs.transferId });
  }

  /** The agent's leg after a REFER transfer connected, until releaseAgent. */
  private readonly released = new Map<string, { dialog: SrfDialog; call: Call }>();

  async joinConference(): Promise<void> {
    // drachtio signals only; a three-way call needs a media bridge (FreeSWITCH conference).
    throw new SipEdgeError('NOT_SUPPORTED', 'the SIP edge does blind transfers; three-way calls need a conference bridge');
  }

  async releaseAgent(legs: { transferId: string; agentLegId: string | null }): Promise<void> {
    const released = this.released.get(legs.transferId);
    this.released.delete(legs.transferId);
    if (!released) return; // trunk transfer: the agent is on the PBX, which releases its own leg
    const { dialog: old, call } = released;
    if (call.refer) {
      call.refer.finished = true;
      if (call.refer.giveUp) clearTimeout(call.refer.giveUp);
      call.refer = null;
    }
    this.callsByDialog.delete(old.id);
    old.removeAllListeners('destroy');
    if (old.connected) await old.destroy().catch((err: unknown) => this.log.warn({ err }, 'BYE to the agent failed'));
  }

  async hangUp(leg: { transferId: string; legId: string; cause: string }): Promise<void> {
    const entry = this.attempts.get(leg.legId);
    if (entry) {
      const { attempt } = entry;
      // Settled already means a CANCEL went out (timeout, or srf passing on the caller's CANCEL).
      const cancelled = attempt.settled;
      attempt.settled = true;
      this.clearAttemptTimer(attempt);
      if (attempt.dialog?.connected) {
        await attempt.dialog.destroy().catch(() => undefined);
      } else if (attempt.uacReq && !cancelled) {
        try {
          attempt.uacReq.cancel();
        } catch {
          // already final
        }
      }
      if (!this.callsByDialog.has(attempt.dialog?.id ?? '')) this.attempts.delete(leg.legId);
      return;
    }
    // A leg of an established call: a B2BUA cannot leave the other side hanging, so the call ends.
    const call = this.calls.get(leg.legId) ?? this.callsByDialog.get(leg.legId);
    if (call && (call.citizen.id === leg.legId || call.agentSide.id === leg.legId)) await this.endCall(call);
  }

  /** Ends a call from our side (no 'destroy' event fires for our own BYEs). */
  private async endCall(call: Call): Promise<void> {
    if (call.refer?.giveUp) clearTimeout(call.refer.giveUp);
    call.refer = null;
    this.forget(call);
    const legs = [call.citizen, call.agentSide].filter((d) => d.connected);
    for (const d of legs) d.removeAllListeners('destroy');
    await Promise.all(legs.map((d) => d.destroy().catch(() => undefined)));
  }

  async returnToAgent(legs: {
    transferId: string;
    citizenLegId: string;
    agentLegId: string | null;
    reason: FailureReason | 'cancelled';
  }): Promise<void> {
    const inbound = this.inbound.get(legs.citizenLegId);
    if (inbound) {
      // A trunk transfer: the caller (the PBX) still holds the citizen with its agent; tell it why.
      this.inbound.delete(legs.citizenLegId);
      this.dropAttemptsOf(inbound);
      if (inbound.responded || inbound.cancelled) return;
      inbound.responded = true;
      const last = inbound.lastFailureStatus;
      const chosen =
        last !== null && legs.reason !== 'cancelled' && failureForStatus(last) === legs.reason
          ? { status: last, reason: reasonPhrase(last) }
          : statusForFailure(legs.reason);
      this.sendFinal(inbound.res, chosen.status, chosen.reason);
      inbound.log.info({ status: chosen.status, reason: legs.reason }, 'transfer failed; caller told');
      return;
    }
    const call = this.calls.get(legs.citizenLegId);
    if (!call?.refer) return;
    const refer = call.refer;
    const status = refer.attempt?.lastStatus ?? statusForFailure(legs.reason).status;
    await this.notifyReferrer(call, status >= 300 ? status : statusForFailure(legs.reason).status);
    if (refer.giveUp) clearTimeout(refer.giveUp);
    refer.finished = true;
    call.refer = null;
    // The citizen never left the agent's dialog; nothing to move back.
    if (!call.agentSide.connected) {
      // The agent hung up meanwhile: nobody to return to.
      call.log.info('referred call failed and the agent had left; releasing the citizen');
      await this.endCall(call);
    }
  }

  async reconcile(transfers: readonly InFlightLegs[]): Promise<void> {
    // SIP dialogs do not survive a restart of this process (srf keeps them in memory): any leg the edge
    // does not know any more is reported gone, so the service can close the transfer.
    for (const t of transfers) {
      const known = this.inbound.has(t.citizenLegId) || this.calls.has(t.citizenLegId);
      if (known) continue;
      this.emit({ type: 'party-left', transferId: t.transferId, party: 'citizen', cause: 'sip leg lost (edge restarted)' });
    }
  }

  // ------------------------------------------------------------ inbound INVITE (trunk B2BUA)

  private async onInvite(req: SrfRequest, res: SrfResponse): Promise<void> {
    const raw = req.msg.raw ?? '';
    const validated = validateRequest(raw, this.config.limits);
    if (!validated.ok) return this.reject(res, validated.rejection, req);
    const request = validated.request;
    const peer = findPeer(this.config, req.source_address);
    if (!peer) return this.reject(res, { status: 403, reason: 'Forbidden', warning: 'not a configured peer' }, req);
    const offer = checkOffer(request);
    if (offer) return this.reject(res, offer, req);
    const target = inviteTarget(this.config, request, peer);
    if (!target.ok) return this.reject(res, target.rejection, req);
    const ticketId = ticketIdOf(request);
    if (ticketId === 'invalid') {
      return this.reject(res, { status: 400, reason: 'Bad Request', warning: 'X-Ticket-Id is not a valid ticket id' }, req);
    }
    if (!this.transfers) {
      return this.reject(res, { status: 503, reason: 'Service Unavailable', warning: 'transfer service not ready' }, req);
    }
    const fromTag = request.from.params['tag'];
    if (!fromTag) return this.reject(res, { status: 400, reason: 'Bad Request', warning: 'From has no tag' }, req);
    const citizenLegId = `${request.callId};from-tag=${fromTag}`;
    if (this.inbound.has(citizenLegId) || this.calls.has(citizenLegId)) {
      return this.reject(res, { status: 482, reason: 'Loop Detected', warning: 'this call is already being transferred' }, req);
    }
    const identity = citizenIdentity(request, peer);
    const input = inboundTransferRequest({
      request,
      peer,
      targetDesk: target.desk,
      switchId: this.switchId,
      citizenLegId,
      ticketId: ticketId ?? `SIP-${this.ids.uuid()}`,
      callerId: identity.callerId,
    });
    const log = this.log.child({ callId: request.callId, peer: peer.name });
    const untrustedPai = !peer.trusted && headerValues(request.headers, 'p-asserted-identity').length > 0;
    log.info(
      { caller: maskNumber(identity.callerId), from: peer.desk, to: target.desk, ticketId: input.ticket.ticketId, untrustedPaiDropped: untrustedPai },
      'trunk INVITE: requesting a transfer',
    );
    const inbound: InboundInvite = {
      citizenLegId,
      req,
      res,
      peer,
      context: {
        callerId: identity.callerId,
        privacy: peer.trusted && wantsPrivacy(request),
        maxForwards: nextMaxForwards(request),
        ticket: input.ticket,
        priority: input.priority,
        firstReceiver: peer.desk,
      },
      transferId: null,
      attempt: null,
      cancelled: false,
      responded: false,
      lastFailureStatus: null,
      log,
    };
    this.inbound.set(citizenLegId, inbound);
    req.on('cancel', () => {
      inbound.cancelled = true;
      inbound.responded = true;
      log.info('caller cancelled');
      // drachtio-server already answered 487 to the caller; createB2BUA cancels the B leg.
      if (inbound.attempt) {
        inbound.attempt.settled = true;
        this.clearAttemptTimer(inbound.attempt);
      }
      if (inbound.transferId) this.emit({ type: 'party-left', transferId: inbound.transferId, party: 'citizen', cause: 'CANCEL' });
      this.inbound.delete(citizenLegId);
      this.dropAttemptsOf(inbound);
    });

    let result: Awaited<ReturnType<TransferRequester['request']>>;
    try {
      result = await this.transfers.request(input, {
        idempotencyKey: `sip-invite:${citizenLegId}`,
        principal: `sip-peer:${peer.name}`,
      });
    } catch (err) {
      this.inbound.delete(citizenLegId);
      log.warn({ err }, 'transfer service refused the trunk transfer');
      if (!inbound.responded) {
        inbound.responded = true;
        this.reject(res, refusalFor(err));
      }
      return;
    }
    inbound.transferId = result.transfer.id;
    log.info({ transferId: result.transfer.id, state: result.transfer.state, replay: result.replay }, 'transfer requested');
    if (inbound.cancelled) {
      this.emit({ type: 'party-left', transferId: result.transfer.id, party: 'citizen', cause: 'CANCEL' });
      return;
    }
    if (['rejected', 'failed', 'cancelled'].includes(result.transfer.state) && !inbound.responded) {
      this.inbound.delete(citizenLegId);
      this.dropAttemptsOf(inbound);
      inbound.responded = true;
      const status = statusForFailure(result.transfer.failure?.reason ?? 'stub-unavailable');
      this.sendFinal(res, status.status, status.reason);
    }
  }

  // ------------------------------------------------------------ established calls and REFER

  private adoptCall(call: Call): void {
    this.calls.set(call.citizenLegId, call);
    this.callsByDialog.set(call.citizen.id, call);
    this.callsByDialog.set(call.agentSide.id, call);
    this.wireDialog(call, call.citizen);
    this.wireDialog(call, call.agentSide);
    // A BYE that arrived in the same read as the 200's echo was handled before these listeners existed.
    if (!call.citizen.connected) this.onDialogGone(call, call.citizen);
    else if (!call.agentSide.connected) this.onDialogGone(call, call.agentSide);
  }

  private wireDialog(call: Call, dialog: SrfDialog): void {
    this.callsByDialog.set(dialog.id, call);
    dialog.on('destroy', () => this.onDialogGone(call, dialog));
    // Holds and media changes pass through to the other side; srf answers with the old SDP otherwise.
    dialog.on('modify', (req: SrfRequest, res: SrfResponse) => {
      const other = dialog === call.citizen ? call.agentSide : call.citizen;
      other.modify(req.body).then(
        (answer) => res.send(200, { body: answer }),
        () => res.send(488),
      );
    });
    dialog.on('refer', (req: SrfRequest, res: SrfResponse) => {
      this.onRefer(call, dialog, req, res).catch((err: unknown) => this.crashGuard(err, res, 'REFER'));
    });
  }

  private onDialogGone(call: Call, dialog: SrfDialog): void {
    this.callsByDialog.delete(dialog.id);
    if (dialog === call.citizen) {
      call.log.info('citizen hung up');
      const refer = call.refer;
      if (refer?.attempt && !refer.attempt.settled) {
        this.emit({ type: 'party-left', transferId: refer.attempt.transferId, party: 'citizen', cause: 'BYE' });
      }
      if (refer?.giveUp) clearTimeout(refer.giveUp);
      call.refer = null;
      this.emit({ type: 'party-left', transferId: call.transferId, party: 'citizen', cause: 'BYE' });
      if (call.agentSide.connected) void call.agentSide.destroy().catch(() => undefined);
      this.forget(call);
      return;
    }
    if (dialog === call.agentSide) {
      if (call.refer && !call.refer.finished) {
        // The agent's phone may hang up right after 202 (blind transfer); the new leg goes on.
        call.log.info('agent left while the referred call is being placed');
        if (call.refer.transferId) this.emit({ type: 'party-left', transferId: call.refer.transferId, party: 'agent', cause: 'BYE' });
        // For the transfer that brought the call to this desk, its target has left.
        if (call.transferId !== call.refer.transferId) this.emit({ type: 'party-left', transferId: call.transferId, party: 'target', cause: 'BYE' });
        return;
      }
      call.log.info('the other desk hung up');
      this.emit({ type: 'party-left', transferId: call.transferId, party: 'target', cause: 'BYE' });
      if (call.citizen.connected) void call.citizen.destroy().catch(() => undefined);
      this.forget(call);
    }
  }

  private onTargetLeftEarly(call: Call, attempt: Attempt): void {
    // The referred desk hung up before the citizen was moved to it.
    if (call.agentSide === attempt.dialog) return;
    this.emit({ type: 'party-left', transferId: attempt.transferId, party: 'target', cause: 'BYE' });
  }

  private forget(call: Call): void {
    this.calls.delete(call.citizenLegId);
    for (const [id, c] of this.callsByDialog) if (c === call) this.callsByDialog.delete(id);
    for (const [legId, entry] of this.attempts) {
      if (entry.owner === call) {
        this.clearAttemptTimer(entry.attempt);
        this.attempts.delete(legId);
      }
    }
    for (const [transferId, released] of this.released) if (released.call === call) this.released.delete(transferId);
  }

  private async onRefer(call: Call, dialog: SrfDialog, req: SrfRequest, res: SrfResponse): Promise<void> {
    const validated = validateRequest(req.msg.raw ?? '', this.config.limits);
    if (!validated.ok) return this.reject(res, validated.rejection, req);
    if (!dialog.connected || this.calls.get(call.citizenLegId) !== call) {
      return this.reject(res, { status: 481, reason: reasonPhrase(481), warning: 'the call has ended' }, req);
    }
    if (dialog !== call.agentSide) {
      return this.reject(res, { status: 403, reason: 'Forbidden', warning: 'only the answering desk may transfer this call' }, req);
    }
    if (call.refer) return this.reject(res, { status: 491, reason: 'Request Pending', warning: 'a transfer of this call is in progress' }, req);
    const referTo = headerValues(validated.request.headers, 'refer-to')[0];
    if (referTo === undefined) return this.reject(res, { status: 400, reason: 'Bad Request', warning: 'missing Refer-To' }, req);
    const target = referTarget(this.config, referTo, call.agentDesk);
    if (target.kind === 'rejected') return this.reject(res, target.rejection, req);
    if (target.kind === 'replaces') {
      // RFC 3891 attended transfer: refused cleanly. The dialog is looked up only to say which refusal.
      const found = this.srf.findDialogByCallIDAndFromTag(target.replaces.callId, target.replaces.fromTag);
      if (!found) return this.reject(res, { status: 481, reason: reasonPhrase(481), warning: 'the dialog named in Replaces does not exist' }, req);
      return this.reject(res, { status: 501, reason: reasonPhrase(501), warning: 'attended transfer (Replaces, RFC 3891) is not supported; use a blind transfer' }, req);
    }
    if (!this.transfers) return this.reject(res, { status: 503, reason: 'Service Unavailable', warning: 'transfer service not ready' }, req);

    // RFC 3892 §3: Referred-By identifies the referrer; without one, the REFER's From does.
    const referredBy = referredByOf(headerValues(validated.request.headers, 'referred-by')[0]) ?? {
      header: headerValues(validated.request.headers, 'from')[0]?.replace(/;tag=[^;]*/, '') ?? '',
      user: validated.request.from.uri.user,
    };
    const refer: ReferInProgress = {
      referrer: dialog,
      referredBy: referredBy.header,
      targetDesk: target.desk,
      transferId: null,
      attempt: null,
      notified: new Set([100]),
      finalSent: false,
      finished: false,
      giveUp: null,
    };
    call.refer = refer;
    res.send(202);
    await this.notifyReferrer(call, 100);
    call.log.info({ from: call.agentDesk, to: target.desk, referredBy: maskUser(referredBy.user) }, 'REFER accepted');

    const agentId = call.agentId;
    const input: TransferRequest = {
      citizenLeg: { switchId: this.switchId, legId: call.citizenLegId },
      agent: { agentId, seatId: agentId, legId: call.agentSide.id },
      from: call.agentDesk,
      to: target.desk,
      mode: 'blind',
      priority: call.context.priority === 'emergency' || priorityOf(validated.request) === 'emergency' ? 'emergency' : 'normal',
      firstReceiver: call.context.firstReceiver,
      callerNumber: call.context.callerId.kind === 'number' ? call.context.callerId.national : null,
      ticket: call.context.ticket,
    };
    // A referrer that never hears back is worse than a failed transfer: give up after the limit.
    refer.giveUp = setTimeout(() => {
      if (refer.finished) return;
      call.log.warn('REFER gave up: no outcome in time');
      const attempt = refer.attempt;
      if (attempt && !attempt.settled) {
        attempt.timedOut = true;
        this.failAttempt(attempt, 'timeout', 'REFER timeout');
        try {
          attempt.uacReq?.cancel();
        } catch {
          // already final
        }
      } else if (!attempt) {
        void this.finishReferFailure(call, 408);
      }
    }, this.config.limits.referTimeoutSeconds * 1000);
    try {
      const result = await this.transfers.request(input, {
        idempotencyKey: `sip-refer:${dialog.id}:${headerValues(validated.request.headers, 'cseq')[0] ?? ''}`,
        principal: `sip-agent:${agentId}`,
      });
      refer.transferId = result.transfer.id;
      if (['rejected', 'failed', 'cancelled'].includes(result.transfer.state) && !refer.finished) {
        await this.finishReferFailure(call, statusForFailure(result.transfer.failure?.reason ?? 'stub-unavailable').status);
      }
    } catch (err) {
      call.log.warn({ err }, 'transfer service refused the REFER');
      await this.finishReferFailure(call, refusalFor(err).status);
    }
  }

  private async finishReferFailure(call: Call, status: number): Promise<void> {
    const refer = call.refer;
    if (!refer || refer.finished) return;
    await this.notifyReferrer(call, status);
    if (refer.giveUp) clearTimeout(refer.giveUp);
    refer.finished = true;
    call.refer = null;
  }

  /** NOTIFY message/sipfrag to the referrer (RFC 3515 §2.4.4); a final status ends the subscription. */
  private async notifyReferrer(call: Call, status: number, reason?: string): Promise<void> {
    const refer = call.refer;
    if (!refer || refer.finalSent) return;
    const notify = referNotify(status, reason);
    if (notify.final) refer.finalSent = true;
    const target = refer.referrer;
    if (!target.connected) return;
    try {
      await target.request({ method: 'NOTIFY', headers: { ...notify.headers }, body: notify.body });
    } catch (err) {
      call.log.warn({ err, status }, 'NOTIFY to the referrer failed');
    }
  }

  // ------------------------------------------------------------ helpers

  private answerAttempt(attempt: Attempt): void {
    if (attempt.settled) return;
    attempt.settled = true;
    attempt.answered = true;
    this.clearAttemptTimer(attempt);
    this.emit({ type: 'target-answered', transferId: attempt.transferId, legId: attempt.legId });
  }

  private failAttempt(attempt: Attempt, status: number | 'timeout', cause: string): void {
    if (attempt.settled) return;
    attempt.settled = true;
    if (typeof status === 'number') attempt.lastStatus = status;
    this.clearAttemptTimer(attempt);
    const failure: TargetFailure = failureForStatus(status);
    // A failed leg is never bridged or hung up later; the next trunk gets a new leg id.
    this.attempts.delete(attempt.legId);
    this.emit({ type: 'target-failed', transferId: attempt.transferId, legId: attempt.legId, failure, cause });
  }

  private dropAttemptsOf(owner: InboundInvite | Call): void {
    for (const [legId, entry] of this.attempts) {
      if (entry.owner === owner) {
        this.clearAttemptTimer(entry.attempt);
        this.attempts.delete(legId);
      }
    }
  }

  private clearAttemptTimer(attempt: Attempt): void {
    if (attempt.timer) clearTimeout(attempt.timer);
    attempt.timer = null;
  }

  private emit(event: CallControlEvent): void {
    for (const listener of this.eventListeners) {
      try {
        listener(event);
      } catch (err) {
        this.log.error({ err, event: event.type }, 'event listener threw');
      }
    }
  }

  private sendFinal(res: SrfResponse, status: number, reason: string, headers: Record<string, string> = {}): void {
    if (res.finalResponseSent) return;
    try {
      res.send(status, reason, { headers });
    } catch (err) {
      this.log.warn({ err, status }, 'could not send a final response');
    }
  }

  private reject(res: SrfResponse, rejection: SipRejection, req?: SrfRequest): void {
    if (req) {
      this.log.info(
        { status: rejection.status, warning: rejection.warning, method: req.method, source: req.source_address },
        'SIP request refused',
      );
    }
    // RFC 3261 §20.43: warn-code 399 (miscellaneous), our host, and what was wrong.
    this.sendFinal(res, rejection.status, rejection.reason, { Warning: `399 ${this.config.domain} "${rejection.warning.replace(/"/g, "'")}"` });
  }

  private crashGuard(err: unknown, res: SrfResponse, method: string): void {
    this.log.error({ err, method }, 'SIP handler failed');
    this.sendFinal(res, 500, 'Server Internal Error');
  }
}
