// The CallControl port on one FreeSWITCH, over the Event Socket. One instance per configured switch.
//
// Blind:     placeCall → originate {…}sofia/gateway/<trunk>/<number> &park (the citizen stays with the
//            agent while it rings) → on answer bridgeToTarget → uuid_bridge <citizen> <target> →
//            CHANNEL_BRIDGE → releaseAgent → uuid_kill <agent>.
// Three-way: the same originate → on answer joinConference → uuid_transfer <citizen> -both
//            conference:hl-<transfer>@<profile> inline (citizen and agent, recorded in 06), then the
//            target leg → add-member events → conference-joined. One member left alone ends the conference.
// Failure:   one originate per placeCall; the service moves to the next trunk on target-failed.
//            returnToAgent bridges the citizen back to the agent's leg if they are not bridged already.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { maskNumber } from '../../domain/phone-number.js';
import type {
  CallControl,
  CallControlEvent,
  InFlightLegs,
  PlaceCallRequest,
  SwitchState,
  SwitchStatus,
} from '../../ports.js';
import { CallTracker, eventMayConcern, legFactFromEvent, type LegFact, type TrackerOutput } from './call-tracker.js';
import {
  EVENT_SUBSCRIPTION,
  checkToken,
  checkUuid,
  conferenceHupAllCommand,
  conferenceName,
  originateCommand,
  uuidBridgeCommand,
  uuidGetvarCommand,
  uuidKillCommand,
  uuidTransferToConferenceCommand,
  type CallerIdHeader,
} from './esl-commands.js';
import { EslConnection, type EslConnectionState } from './esl-connection.js';
import { EslError } from './esl-errors.js';
import { isFreeswitchHangupCause, parseOriginateResult } from './hangup-cause.js';

export interface EslCallControlOptions {
  readonly switchId: string;
  readonly desk: string;
  readonly host: string;
  readonly port: number;
  readonly password: string;
  readonly callerIdHeader: CallerIdHeader;
  readonly sipDomain: string;
  readonly conferenceProfile: string;
  /** Where the citizen goes when the agent's leg is gone and the transfer failed (e.g. the 12345 queue). */
  readonly returnDestination?: { readonly extension: string; readonly context: string } | undefined;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
  /** "api status" while idle, so a hung switch is noticed before a transfer needs it (0: off). */
  readonly heartbeatMs?: number;
  /** Added to a call's answer timeout to bound its originate job: FreeSWITCH's own CANCEL comes first. */
  readonly jobGraceMs: number;
  readonly logger: Logger;
}

/** FreeSWITCH spells it "No such channel!" (recorded, 1.10.12); older builds "No Such Channel!". */
const NO_SUCH_CHANNEL = /^-ERR No such channel!?/i;
const INVALID_UUID = /^-ERR Invalid uuid/i;

export class EslCallControl implements CallControl {
  readonly switchId: string;
  private readonly connection: EslConnection;
  private readonly tracker = new CallTracker();
  private readonly eventListeners = new Set<(event: CallControlEvent) => void>();
  private readonly statusListeners = new Set<(status: SwitchStatus) => void>();
  private readonly log: Logger;
  private reconcileQueue: Promise<void> = Promise.resolve();

  constructor(private readonly options: EslCallControlOptions) {
    this.switchId = checkToken('the switch id', options.switchId);
    this.log = options.logger.child({ switchId: options.switchId, desk: options.desk });
    this.connection = new EslConnection({
      host: options.host,
      port: options.port,
      password: options.password,
      subscription: EVENT_SUBSCRIPTION,
      commandTimeoutMs: options.commandTimeoutMs,
      connectTimeoutMs: options.connectTimeoutMs,
      reconnectInitialMs: options.reconnectInitialMs,
      reconnectMaxMs: options.reconnectMaxMs,
      heartbeatMs: options.heartbeatMs ?? 0,
      logger: this.log,
      eventFilter: (raw) => eventMayConcern(raw, (leg) => this.tracker.knowsLeg(leg)),
    });
    this.connection.onEvent((event) => {
      const fact = legFactFromEvent(event);
      if (fact) this.applyFact(fact);
    });
    this.connection.onState((state, detail) => this.stateChanged(state, detail));
  }

  /** Opens the connection; progress shows in status() and onStatus. */
  start(): void {
    this.connection.start();
  }

  /** For start-up and tests: resolves once connected, rejects on a refused password. */
  ready(timeoutMs = 10_000): Promise<void> {
    return this.connection.waitConnected(timeoutMs);
  }

  status(): SwitchStatus {
    return {
      switchId: this.switchId,
      kind: 'freeswitch',
      desk: this.options.desk,
      state: toSwitchState(this.connection.state),
      detail: this.connection.detail,
    };
  }

  async placeCall(request: PlaceCallRequest): Promise<void> {
    const command = originateCommand({
      legId: request.legId,
      transferId: request.transferId,
      gateway: request.target.trunk,
      number: request.target.number,
      callerId: request.callerId,
      callerIdHeader: this.options.callerIdHeader,
      ticketId: request.ticket.ticketId,
      stubUrl: request.ticket.stubUrl,
      sourceDesk: request.sourceDesk,
      sipDomain: this.options.sipDomain,
      answerTimeoutSeconds: request.answerTimeoutSeconds,
      priority: request.priority,
    });
    const legId = request.legId.toLowerCase();
    const log = this.log.child({
      transferId: request.transferId,
      legId,
      trunk: request.target.trunk,
      targetDesk: request.target.desk,
      caller: maskNumber(request.callerId),
    });
    this.tracker.track({
      transferId: request.transferId,
      mode: request.mode,
      citizenLegId: request.citizenLegId,
      agentLegId: request.agentLegId,
      targetLegId: legId,
    });
    const jobId = randomUUID();
    const { accepted, result } = this.connection.bgapi(command, jobId, request.answerTimeoutSeconds * 1000 + this.options.jobGraceMs);
    result.then(
      (body) => this.applyFact({ type: 'originate-result', legId, result: parseOriginateResult(body) }),
      (err: EslError) => {
        if (err.code !== 'timeout') return;
        // FreeSWITCH should have sent CANCEL at originate_timeout; make sure the leg is gone, then move on.
        const output = this.tracker.apply({
          type: 'originate-result',
          legId,
          result: { ok: false, cause: 'ESL_JOB_TIMEOUT', failure: 'no-answer' },
        });
        this.deliver(output);
        // Only a leg still dialling is killed: one answered (seen by events or a reconcile) is in use.
        if (output.events.some((e) => e.type === 'target-failed')) {
          log.warn({ jobId }, 'originate job timed out while dialling; killing the leg');
          this.connection.api(uuidKillCommand(legId)).catch(() => undefined);
        }
      },
    );
    try {
      await accepted;
    } catch (err) {
      this.tracker.abandonTarget(request.transferId, legId);
      log.error({ err, jobId }, 'FreeSWITCH did not accept the originate');
      throw err;
    }
    log.info({ jobId }, 'originate accepted');
  }

  async bridgeToTarget(legs: { transferId: string; citizenLegId: string; targetLegId: string }): Promise<void> {
    const reply = await this.connection.api(uuidBridgeCommand(legs.citizenLegId, legs.targetLegId));
    if (!reply.startsWith('+OK')) throw commandFailed('uuid_bridge', reply);
    this.log.info({ transferId: legs.transferId }, 'citizen bridged to the other desk');
  }

  async joinConference(legs: { transferId: string; citizenLegId: string; agentLegId: string | null; targetLegId: string }): Promise<void> {
    const conference = conferenceName(legs.transferId);
    const profile = this.options.conferenceProfile;
    this.tracker.setConference(legs.transferId, conference);
    // -both takes the citizen's bridged partner (the agent) along, so the agent's leg is not hung up.
    const first = await this.connection.api(uuidTransferToConferenceCommand(legs.citizenLegId, conference, profile, legs.agentLegId !== null));
    if (!first.startsWith('+OK')) throw commandFailed('uuid_transfer (citizen)', first);
    const second = await this.connection.api(uuidTransferToConferenceCommand(legs.targetLegId, conference, profile, false));
    if (!second.startsWith('+OK')) throw commandFailed('uuid_transfer (other desk)', second);
    this.log.info({ transferId: legs.transferId, conference }, 'three-way conference requested');
  }

  async releaseAgent(legs: { transferId: string; agentLegId: string | null }): Promise<void> {
    if (legs.agentLegId === null) return;
    await this.killLeg(legs.agentLegId);
    this.log.info({ transferId: legs.transferId }, 'agent released');
  }

  async hangUp(leg: { transferId: string; legId: string; cause: string }): Promise<void> {
    // A FreeSWITCH cause name (ORIGINATOR_CANCEL, NO_ANSWER …) goes with the kill; anything else is only logged.
    await this.killLeg(leg.legId, isFreeswitchHangupCause(leg.cause) ? leg.cause : undefined);
    this.log.info({ transferId: leg.transferId, legId: leg.legId, reason: leg.cause }, 'leg hung up');
  }

  async returnToAgent(legs: {
    transferId: string;
    citizenLegId: string;
    agentLegId: string | null;
    reason: string;
  }): Promise<void> {
    const log = this.log.child({ transferId: legs.transferId, reason: legs.reason });
    this.tracker.forget(legs.transferId);
    if (legs.agentLegId !== null) {
      const partner = await this.connection.api(uuidGetvarCommand(legs.citizenLegId, 'bridge_uuid'));
      if (NO_SUCH_CHANNEL.test(partner)) {
        log.info('the citizen has already hung up; nothing to return');
        return;
      }
      if (partner.trim().toLowerCase() === legs.agentLegId.toLowerCase()) {
        log.info('the citizen is still with the agent');
        return;
      }
      const reply = await this.connection.api(uuidBridgeCommand(legs.citizenLegId, legs.agentLegId));
      if (reply.startsWith('+OK')) {
        log.info('the citizen is back with the agent');
        return;
      }
      if (!INVALID_UUID.test(reply)) throw commandFailed('uuid_bridge (return to agent)', reply);
      log.warn('the agent leg is gone');
    }
    const destination = this.options.returnDestination;
    if (!destination) {
      throw new EslError('command-failed', 'the agent leg is gone and no return destination is configured; the citizen stays parked');
    }
    const reply = await this.connection.api(
      `uuid_transfer ${checkUuid('the citizen leg', legs.citizenLegId)} ${checkToken('the return extension', destination.extension)} XML ${checkToken('the return context', destination.context)}`,
    );
    if (!reply.startsWith('+OK')) throw commandFailed('uuid_transfer (return)', reply);
    log.info('the citizen was sent to the return destination');
  }

  /**
   * Asks FreeSWITCH, leg by leg, what became of transfers while this driver could not see them, and
   * reports it as ordinary events. uuid_getvar answers "-ERR No such channel!" for a leg that is gone
   * (recorded in 07); for a live leg it returns the variable (bridge_uuid, endpoint_disposition).
   */
  async reconcile(transfers: readonly InFlightLegs[]): Promise<void> {
    const adopt = transfers.filter((t) => !this.tracker.hasEnded(t.transferId));
    for (const t of adopt) {
      if (!this.tracker.has(t.transferId)) {
        this.tracker.track({
          transferId: t.transferId,
          mode: t.mode,
          citizenLegId: t.citizenLegId,
          agentLegId: t.agentLegId,
          targetLegId: t.targetLegId,
          targetPhase: t.state === 'answered' || t.state === 'bridged' || t.state === 'conferenced' ? 'answered' : 'dialing',
          alreadyBridged: t.state === 'bridged',
          alreadyConferenced: t.state === 'conferenced',
        });
        if (t.state === 'conferenced') this.tracker.setConference(t.transferId, conferenceName(t.transferId));
      }
    }
    await this.serialised(() => this.reconcileTracked(new Set(adopt.map((t) => t.transferId))));
  }

  onEvent(listener: (event: CallControlEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  onStatus(listener: (status: SwitchStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  async close(): Promise<void> {
    await this.connection.close();
  }

  // ------------------------------------------------------------------ internals

  private async killLeg(legId: string, cause?: string): Promise<void> {
    const reply = await this.connection.api(uuidKillCommand(legId, cause));
    // A leg that is already gone is as released as it gets.
    if (!reply.startsWith('+OK') && !NO_SUCH_CHANNEL.test(reply)) throw commandFailed('uuid_kill', reply);
  }

  private async reconcileTracked(only: Set<string> | null): Promise<void> {
    const legs = this.tracker.inFlight().filter((t) => only === null || only.has(t.transferId));
    for (const t of legs) {
      try {
        // The citizen first: if they have gone, nothing else about the transfer matters.
        const citizen = await this.connection.api(uuidGetvarCommand(t.citizenLegId, 'bridge_uuid'));
        if (NO_SUCH_CHANNEL.test(citizen)) {
          this.applyFact({ type: 'gone', legId: t.citizenLegId });
          continue;
        }
        if (t.targetLegId) {
          const target = await this.connection.api(uuidGetvarCommand(t.targetLegId, 'endpoint_disposition'));
          if (NO_SUCH_CHANNEL.test(target)) this.applyFact({ type: 'gone', legId: t.targetLegId });
          else if (target.trim() === 'ANSWER') this.applyFact({ type: 'answer', legId: t.targetLegId });
        }
        const partner = citizen.trim().toLowerCase();
        if (t.targetLegId && partner === t.targetLegId) this.applyFact({ type: 'bridge', legIds: [t.citizenLegId, partner] });
        if (t.agentLegId) {
          const agent = await this.connection.api(uuidGetvarCommand(t.agentLegId, 'uuid'));
          if (NO_SUCH_CHANNEL.test(agent)) this.applyFact({ type: 'gone', legId: t.agentLegId });
        }
      } catch (err) {
        this.log.warn({ err, transferId: t.transferId }, 'reconcile of a transfer did not finish; it is retried after the next reconnect');
      }
    }
  }

  private applyFact(fact: LegFact): void {
    this.deliver(this.tracker.apply(fact));
  }

  private deliver(output: TrackerOutput): void {
    for (const event of output.events) {
      this.log.debug({ transferId: event.transferId, event: event.type }, 'call event');
      for (const listener of this.eventListeners) {
        try {
          listener(event);
        } catch (err) {
          this.log.error({ err }, 'call event listener threw');
        }
      }
    }
    for (const action of output.actions) {
      this.connection.api(conferenceHupAllCommand(action.conference)).catch((err: unknown) => {
        this.log.warn({ err, conference: action.conference }, 'could not end a conference left with one party');
      });
    }
  }

  private stateChanged(state: EslConnectionState, detail: string): void {
    if (state === 'connected' && this.tracker.size > 0) {
      // Reconnected with transfers in flight: settle them from the switch's own state. The service
      // may ask for the same (reconcile(inFlight) on 'connected'); the two runs take turns, and the
      // tracker reports each change once.
      void this.serialised(() => this.reconcileTracked(null));
    }
    if (state === 'auth-failed') this.log.error({ detail }, 'FreeSWITCH refused the Event Socket password; not retrying');
    else this.log.info({ state, detail }, 'Event Socket state');
    const status = this.status();
    for (const listener of this.statusListeners) {
      try {
        listener(status);
      } catch (err) {
        this.log.error({ err }, 'status listener threw');
      }
    }
  }

  /** Runs reconciles one after another, never two interleaved on the same legs. */
  private serialised(work: () => Promise<void>): Promise<void> {
    const run = this.reconcileQueue.then(work, work);
    this.reconcileQueue = run.catch(() => undefined);
    return run;
  }
}

function toSwitchState(state: EslConnectionState): SwitchState {
  switch (state) {
    case 'connected':
      return 'connected';
    case 'connecting':
      return 'connecting';
    case 'auth-failed':
      return 'auth-failed';
    case 'disconnected':
    case 'closed':
      return 'disconnected';
  }
}

function commandFailed(command: string, reply: string): EslError {
  const text = reply.trim();
  return new EslError('command-failed', `${command} failed: ${text}`, text);
}
