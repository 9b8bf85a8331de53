// What the driver knows about the legs of each transfer, and how FreeSWITCH's facts about those legs
// become the domain's words. Pure: facts in, CallControlEvents (and the odd command to issue) out, so
// every ordering the recordings show can be replayed in a unit test.
import type { CallControlEvent } from '../../ports.js';
import type { Party, TransferMode } from '../../domain/transfer.js';
import { targetFailureFor, type OriginateResult } from './hangup-cause.js';
import type { EslEvent } from './esl-connection.js';

/** A fact about one leg, read from an event, a job result or a reconcile query. */
export type LegFact =
  | { readonly type: 'progress'; readonly legId: string }
  | { readonly type: 'answer'; readonly legId: string }
  | { readonly type: 'hangup'; readonly legId: string; readonly cause: string }
  | { readonly type: 'bridge'; readonly legIds: readonly [string, string] }
  | { readonly type: 'unbridge'; readonly legId: string }
  | { readonly type: 'originate-result'; readonly legId: string; readonly result: OriginateResult }
  | { readonly type: 'member-added'; readonly conference: string; readonly legId: string; readonly size: number }
  | { readonly type: 'member-left'; readonly conference: string; readonly legId: string; readonly size: number; readonly cause: string }
  /** Reconcile found no such channel: it ended while the driver could not see it. */
  | { readonly type: 'gone'; readonly legId: string };

export type TrackerAction = { readonly type: 'end-conference'; readonly conference: string };

export interface TrackerOutput {
  readonly events: CallControlEvent[];
  readonly actions: TrackerAction[];
}

/** The cause reported for a leg that vanished while the socket was down; its real cause was not seen. */
export const GONE_CAUSE = 'CHANNEL_GONE_WHILE_DISCONNECTED';

type TargetPhase = 'none' | 'dialing' | 'ringing' | 'answered' | 'failed' | 'left';

interface Tracked {
  readonly transferId: string;
  readonly mode: TransferMode;
  readonly citizenLegId: string;
  agentLegId: string | null;
  targetLegId: string | null;
  target: TargetPhase;
  bridged: boolean;
  conference: string | null;
  conferenceJoined: boolean;
  readonly members: Set<string>;
  readonly left: Set<Party>;
  /** The leg the citizen is bridged to, as last seen (the agent's, the target's, or none). */
  citizenPartner: string | null;
}

export interface TrackRequest {
  readonly transferId: string;
  readonly mode: TransferMode;
  readonly citizenLegId: string;
  readonly agentLegId: string | null;
  readonly targetLegId: string | null;
  /** Where the target stands when a transfer is adopted (reconcile): answered legs skip ringing. */
  readonly targetPhase?: 'dialing' | 'answered';
  /** Adopted in this state: a bridge or join already reported is not reported again. */
  readonly alreadyBridged?: boolean;
  readonly alreadyConferenced?: boolean;
}

/** Reads the facts the driver uses from a JSON event; anything else is null. */
export function legFactFromEvent(event: EslEvent): LegFact | null {
  const uuid = event['Unique-ID']?.toLowerCase();
  switch (event['Event-Name']) {
    case 'CHANNEL_PROGRESS':
    case 'CHANNEL_PROGRESS_MEDIA':
      return uuid ? { type: 'progress', legId: uuid } : null;
    case 'CHANNEL_ANSWER':
      return uuid ? { type: 'answer', legId: uuid } : null;
    case 'CHANNEL_HANGUP':
      return uuid ? { type: 'hangup', legId: uuid, cause: event['Hangup-Cause'] ?? 'NORMAL_UNSPECIFIED' } : null;
    case 'CHANNEL_BRIDGE': {
      // Recorded: one CHANNEL_BRIDGE per bridge, for the A side, naming both legs.
      const a = (event['Bridge-A-Unique-ID'] ?? uuid)?.toLowerCase();
      const b = (event['Bridge-B-Unique-ID'] ?? event['Other-Leg-Unique-ID'])?.toLowerCase();
      return a && b ? { type: 'bridge', legIds: [a, b] } : null;
    }
    case 'CHANNEL_UNBRIDGE':
      return uuid ? { type: 'unbridge', legId: uuid } : null;
    case 'CUSTOM': {
      if (event['Event-Subclass'] !== 'conference::maintenance') return null;
      const conference = event['Conference-Name'];
      const size = Number(event['Conference-Size'] ?? 'NaN');
      if (!conference || !uuid || !Number.isInteger(size)) return null;
      // Members are matched by Unique-ID, never by caller ID: a member added by "conference … dial"
      // shows "Outbound Call" as its caller ID although its INVITE carried the citizen's number (06).
      if (event.Action === 'add-member') return { type: 'member-added', conference, legId: uuid, size };
      if (event.Action === 'del-member') {
        return { type: 'member-left', conference, legId: uuid, size, cause: event['Hangup-Cause'] ?? 'LEFT_CONFERENCE' };
      }
      return null;
    }
    default:
      return null;
  }
}

const UNIQUE_ID_KEY = 'Unique-ID":"';
const CONFERENCE_PREFIX = '"Conference-Name":"hl-';

/**
 * Whether a raw JSON event can matter to these transfers, without parsing it: it names a tracked leg
 * under any "…Unique-ID" key (the channel, its other leg, either side of a bridge), or it is about one
 * of this driver's conferences (named "hl-<transfer id>"), which outlive the transfer's tracking.
 */
export function eventMayConcern(rawJson: string, knowsLeg: (legId: string) => boolean): boolean {
  if (rawJson.includes(CONFERENCE_PREFIX)) return true;
  let at = rawJson.indexOf(UNIQUE_ID_KEY);
  while (at >= 0) {
    const start = at + UNIQUE_ID_KEY.length;
    if (knowsLeg(rawJson.slice(start, start + 36).toLowerCase())) return true;
    at = rawJson.indexOf(UNIQUE_ID_KEY, start);
  }
  return false;
}

export class CallTracker {
  private readonly transfers = new Map<string, Tracked>();
  private readonly legs = new Map<string, { transferId: string; party: Party }>();
  /** Conferences this driver made, kept until they empty, so "one party left" can end them. */
  private readonly conferences = new Map<string, string>();
  /** Transfers this tracker saw end, newest last, so a later reconcile does not adopt them again. */
  private readonly ended = new Set<string>();
  private static readonly ENDED_CAP = 10_000;

  track(request: TrackRequest): void {
    let t = this.transfers.get(request.transferId);
    if (!t) {
      t = {
        transferId: request.transferId,
        mode: request.mode,
        citizenLegId: request.citizenLegId.toLowerCase(),
        agentLegId: null,
        targetLegId: null,
        target: 'none',
        bridged: false,
        conference: null,
        conferenceJoined: false,
        members: new Set(),
        left: new Set(),
        citizenPartner: null,
      };
      if (request.alreadyBridged) t.bridged = true;
      if (request.alreadyConferenced) t.conferenceJoined = true;
      this.transfers.set(t.transferId, t);
      this.legs.set(t.citizenLegId, { transferId: t.transferId, party: 'citizen' });
    }
    if (request.agentLegId && !t.left.has('agent')) {
      t.agentLegId = request.agentLegId.toLowerCase();
      this.legs.set(t.agentLegId, { transferId: t.transferId, party: 'agent' });
    }
    if (request.targetLegId && request.targetLegId.toLowerCase() !== t.targetLegId) {
      if (t.targetLegId) this.legs.delete(t.targetLegId);
      t.targetLegId = request.targetLegId.toLowerCase();
      t.target = request.targetPhase ?? 'dialing';
      this.legs.set(t.targetLegId, { transferId: t.transferId, party: 'target' });
    }
  }

  /** A call that was never accepted by the switch: forget its leg so a retry starts clean. */
  abandonTarget(transferId: string, legId: string): void {
    const t = this.transfers.get(transferId);
    if (!t || t.targetLegId !== legId.toLowerCase()) return;
    this.legs.delete(t.targetLegId);
    t.targetLegId = null;
    t.target = 'none';
  }

  setConference(transferId: string, conference: string): void {
    const t = this.transfers.get(transferId);
    if (!t) return;
    t.conference = conference;
    this.conferences.set(conference, transferId);
  }

  /** Whether the citizen's leg was last seen bridged to this leg. */
  citizenBridgedTo(transferId: string, legId: string): boolean {
    return this.transfers.get(transferId)?.citizenPartner === legId.toLowerCase();
  }

  forget(transferId: string): void {
    this.ended.add(transferId);
    if (this.ended.size > CallTracker.ENDED_CAP) {
      const oldest = this.ended.values().next().value;
      if (oldest !== undefined) this.ended.delete(oldest);
    }
    const t = this.transfers.get(transferId);
    if (!t) return;
    this.transfers.delete(transferId);
    for (const leg of [t.citizenLegId, t.agentLegId, t.targetLegId]) {
      if (leg && this.legs.get(leg)?.transferId === transferId) this.legs.delete(leg);
    }
  }

  /** Whether an event about this leg can matter. */
  knowsLeg(legId: string): boolean {
    return this.legs.has(legId);
  }

  has(transferId: string): boolean {
    return this.transfers.has(transferId);
  }

  /** Whether this tracker already saw the transfer end (its events were reported). */
  hasEnded(transferId: string): boolean {
    return this.ended.has(transferId);
  }

  /** Transfers with legs still tracked, for the reconcile after a reconnect. */
  inFlight(): { transferId: string; mode: TransferMode; citizenLegId: string; agentLegId: string | null; targetLegId: string | null; targetAnswered: boolean; bridged: boolean }[] {
    return [...this.transfers.values()].map((t) => ({
      transferId: t.transferId,
      mode: t.mode,
      citizenLegId: t.citizenLegId,
      agentLegId: t.left.has('agent') ? null : t.agentLegId,
      targetLegId: t.target === 'failed' ? null : t.targetLegId,
      targetAnswered: t.target === 'answered',
      bridged: t.bridged,
    }));
  }

  get size(): number {
    return this.transfers.size;
  }

  apply(fact: LegFact): TrackerOutput {
    const events: CallControlEvent[] = [];
    const actions: TrackerAction[] = [];
    switch (fact.type) {
      case 'progress': {
        const t = this.transferOf(fact.legId, 'target');
        if (t && t.target === 'dialing') {
          t.target = 'ringing';
          events.push({ type: 'target-ringing', transferId: t.transferId, legId: fact.legId });
        }
        break;
      }
      case 'answer':
        this.answered(fact.legId, events);
        break;
      case 'originate-result':
        if (fact.result.ok) this.answered(fact.legId, events);
        else this.targetFailed(fact.legId, fact.result.cause, events, fact.result.failure);
        break;
      case 'hangup':
      case 'gone':
        this.legEnded(fact.legId, fact.type === 'gone' ? GONE_CAUSE : fact.cause, fact.type === 'gone', events);
        break;
      case 'bridge': {
        const [a, b] = fact.legIds;
        for (const [leg, other] of [[a, b], [b, a]] as const) {
          const ref = this.legs.get(leg);
          if (ref?.party !== 'citizen') continue;
          const t = this.transfers.get(ref.transferId);
          if (!t) continue;
          t.citizenPartner = other;
          if (other === t.targetLegId && t.target === 'answered' && t.mode === 'blind' && !t.bridged) {
            t.bridged = true;
            events.push({ type: 'bridged', transferId: t.transferId });
          }
        }
        break;
      }
      case 'unbridge': {
        const t = this.transferOf(fact.legId, 'citizen');
        if (t) t.citizenPartner = null;
        break;
      }
      case 'member-added': {
        const t = this.transfers.get(this.conferences.get(fact.conference) ?? '');
        if (!t) break;
        t.members.add(fact.legId);
        if (!t.conferenceJoined && t.targetLegId && t.members.has(t.targetLegId) && t.members.has(t.citizenLegId)) {
          t.conferenceJoined = true;
          events.push({ type: 'conference-joined', transferId: t.transferId });
        }
        break;
      }
      case 'member-left': {
        const owner = this.conferences.get(fact.conference);
        if (owner === undefined) break;
        const t = this.transfers.get(owner);
        if (t) {
          t.members.delete(fact.legId);
          const ref = this.legs.get(fact.legId);
          if (ref && ref.transferId === t.transferId) this.partyLeft(t, ref.party, fact.cause, events);
        }
        // One party left alone in a conference is no call: end it (issue 3, item 4).
        if (fact.size === 1) actions.push({ type: 'end-conference', conference: fact.conference });
        if (fact.size <= 1) this.conferences.delete(fact.conference);
        break;
      }
    }
    return { events, actions };
  }

  private transferOf(legId: string, party: Party): Tracked | undefined {
    const ref = this.legs.get(legId);
    if (!ref || ref.party !== party) return undefined;
    return this.transfers.get(ref.transferId);
  }

  private answered(legId: string, events: CallControlEvent[]): void {
    const t = this.transferOf(legId, 'target');
    if (t && (t.target === 'dialing' || t.target === 'ringing')) {
      t.target = 'answered';
      events.push({ type: 'target-answered', transferId: t.transferId, legId });
    }
  }

  private targetFailed(legId: string, cause: string, events: CallControlEvent[], failure = targetFailureFor(cause)): void {
    const t = this.transferOf(legId, 'target');
    if (t && (t.target === 'dialing' || t.target === 'ringing')) {
      t.target = 'failed';
      this.legs.delete(legId);
      events.push({ type: 'target-failed', transferId: t.transferId, legId, failure, cause });
    }
  }

  private legEnded(legId: string, cause: string, unseen: boolean, events: CallControlEvent[]): void {
    const ref = this.legs.get(legId);
    if (!ref) return;
    const t = this.transfers.get(ref.transferId);
    if (!t) return;
    if (ref.party === 'target' && (t.target === 'dialing' || t.target === 'ringing')) {
      // Unseen: the real cause is lost with the socket; treat it as unreachable so a backup trunk is tried.
      this.targetFailed(legId, cause, events, unseen ? 'unreachable' : targetFailureFor(cause));
      return;
    }
    this.partyLeft(t, ref.party, cause, events);
  }

  private partyLeft(t: Tracked, party: Party, cause: string, events: CallControlEvent[]): void {
    if (t.left.has(party)) return;
    t.left.add(party);
    if (party === 'target') t.target = 'left';
    events.push({ type: 'party-left', transferId: t.transferId, party, cause });
    // After the citizen or the other desk has gone the transfer has ended; later events are echoes.
    if (party === 'citizen' || party === 'target') this.forget(t.transferId);
    else if (t.agentLegId) this.legs.delete(t.agentLegId);
  }
}
