import { describe, expect, it } from 'vitest';
import { CallTracker, GONE_CAUSE, eventMayConcern, legFactFromEvent, type LegFact } from '../../../src/adapters/freeswitch/call-tracker.js';
import { parseOriginateResult } from '../../../src/adapters/freeswitch/hangup-cause.js';
import type { CallControlEvent } from '../../../src/ports.js';
import { readConnections } from '../../support/esl-transcript.js';

/** Every fact the driver reads from a recording, in order; BACKGROUND_JOB results attached to their leg. */
function recordedFacts(file: string, jobLegs: Record<string, string> = {}): LegFact[] {
  const facts: LegFact[] = [];
  for (const m of readConnections(file)[0]!.messages) {
    if (!m.event) continue;
    if (m.event['Event-Name'] === 'BACKGROUND_JOB') {
      const leg = jobLegs[m.event['Job-UUID'] ?? ''];
      if (leg) facts.push({ type: 'originate-result', legId: leg, result: parseOriginateResult(m.event._body ?? '') });
      continue;
    }
    const fact = legFactFromEvent(m.event);
    if (fact) facts.push(fact);
  }
  return facts;
}

function run(tracker: CallTracker, facts: LegFact[]) {
  const events: CallControlEvent[] = [];
  const actions: unknown[] = [];
  for (const fact of facts) {
    const out = tracker.apply(fact);
    events.push(...out.events);
    actions.push(...out.actions);
  }
  return { events, actions };
}

describe('recorded FreeSWITCH events become domain events', () => {
  it('04: ringing, answered (once, though CHANNEL_ANSWER and the job both say so), bridged, then the citizen leaves', () => {
    const A = '9169450d-e820-42e3-bf1f-588df5261ac6';
    const B = '9b40ae71-a13b-4eac-b6db-02bf3d293582';
    const tracker = new CallTracker();
    tracker.track({ transferId: 'tr', mode: 'blind', citizenLegId: A, agentLegId: null, targetLegId: B });
    const { events } = run(tracker, recordedFacts('04-citizen-to-110-bridged.txt', { 'c1f8479e-74cd-43c3-af9c-c36bbb2ea3a7': B }));
    expect(events).toEqual([
      { type: 'target-ringing', transferId: 'tr', legId: B },
      { type: 'target-answered', transferId: 'tr', legId: B },
      { type: 'bridged', transferId: 'tr' },
      { type: 'party-left', transferId: 'tr', party: 'citizen', cause: 'NORMAL_CLEARING' },
    ]);
    expect(tracker.size).toBe(0);
  });

  it('05: three originates on one transfer fail as busy, unreachable and no-answer, each reported once', () => {
    const A = 'b23c1a63-6b21-4ede-ba55-be8e510dfe42';
    const legs = ['3a28d426-aa61-4644-82fb-83810e9d2a84', '486b1d79-2655-4e12-a90c-d38a844437d2', '74b73453-22b8-4651-9618-226555621289'];
    const jobs = { '5ea571c0-3353-4c3d-845b-0af31148d9a6': legs[0]!, '2f837ec0-c303-4d5a-936a-3718ce0056e0': legs[1]!, 'f1aeb090-32fc-4154-acff-9020d4f2eedc': legs[2]! };
    const tracker = new CallTracker();
    const facts = recordedFacts('05-citizen-to-110-failed.txt', jobs);
    const events: CallControlEvent[] = [];
    // The service places the next call after each failure; here, before that leg's first event.
    for (const fact of facts) {
      const leg = 'legId' in fact ? fact.legId : null;
      if (leg && legs.includes(leg) && !events.some((e) => 'legId' in e && e.legId === leg)) {
        tracker.track({ transferId: 'tr', mode: 'blind', citizenLegId: A, agentLegId: null, targetLegId: leg });
      }
      events.push(...tracker.apply(fact).events);
    }
    expect(events).toEqual([
      { type: 'target-failed', transferId: 'tr', legId: legs[0], failure: 'busy', cause: 'USER_BUSY' },
      { type: 'target-failed', transferId: 'tr', legId: legs[1], failure: 'unreachable', cause: 'NO_USER_RESPONSE' },
      { type: 'target-ringing', transferId: 'tr', legId: legs[2] },
      { type: 'target-failed', transferId: 'tr', legId: legs[2], failure: 'no-answer', cause: 'NO_ANSWER' },
      { type: 'party-left', transferId: 'tr', party: 'citizen', cause: 'NORMAL_CLEARING' },
    ]);
  });

  it('06: the conference is joined when 110 is added (matched by uuid, not its "Outbound Call" caller ID); 110 leaves; the last member ends it', () => {
    const A = '8aa0ba10-7484-457b-9c04-0a1e650e5ea0';
    const AG = '4da349ae-249d-4f3b-988a-7c0f48e99917';
    const B = 'dce1725f-f836-40b2-90c0-0d532d6a9a6a';
    const tracker = new CallTracker();
    const facts = recordedFacts('06-three-way-conference.txt');
    // In 06 the agent leg was originated and 110 was dialled by the conference; from the tracker's view
    // they are the agent and the target of one three-way transfer.
    tracker.track({ transferId: 'tr', mode: 'three-way', citizenLegId: A, agentLegId: AG, targetLegId: B, targetPhase: 'answered' });
    tracker.setConference('tr', 'T-123');
    const { events, actions } = run(tracker, facts);
    expect(events).toEqual([
      { type: 'conference-joined', transferId: 'tr' },
      { type: 'party-left', transferId: 'tr', party: 'target', cause: 'NORMAL_CLEARING' },
    ]);
    // After "hup all" the citizen's del-member leaves one member: the driver would end the conference.
    expect(actions).toEqual([{ type: 'end-conference', conference: 'T-123' }]);
  });

  it('legs that belong to no transfer are ignored (other calls on the same switch)', () => {
    const tracker = new CallTracker();
    expect(run(tracker, recordedFacts('03-event-json-all.txt')).events).toEqual([]);
  });
});

describe('the tracker state machine on single facts', () => {
  const C = 'c0000000-0000-4000-8000-000000000001';
  const AG = 'c0000000-0000-4000-8000-000000000002';
  const T = 'c0000000-0000-4000-8000-000000000003';
  const fresh = (mode: 'blind' | 'three-way' = 'blind') => {
    const tracker = new CallTracker();
    tracker.track({ transferId: 'tr', mode, citizenLegId: C, agentLegId: AG, targetLegId: T });
    return tracker;
  };

  it('a target leg that vanished while the driver was blind is unreachable, so the backup trunk is tried', () => {
    expect(fresh().apply({ type: 'gone', legId: T }).events).toEqual([
      { type: 'target-failed', transferId: 'tr', legId: T, failure: 'unreachable', cause: GONE_CAUSE },
    ]);
  });

  it('the agent hanging up while 110 rings is reported, and the transfer goes on', () => {
    const tracker = fresh();
    expect(tracker.apply({ type: 'hangup', legId: AG, cause: 'NORMAL_CLEARING' }).events).toEqual([
      { type: 'party-left', transferId: 'tr', party: 'agent', cause: 'NORMAL_CLEARING' },
    ]);
    expect(tracker.apply({ type: 'answer', legId: T }).events).toEqual([{ type: 'target-answered', transferId: 'tr', legId: T }]);
  });

  it('110 hanging up after answering, before the bridge, is the target leaving, not a dial failure', () => {
    const tracker = fresh();
    tracker.apply({ type: 'answer', legId: T });
    expect(tracker.apply({ type: 'hangup', legId: T, cause: 'NORMAL_CLEARING' }).events).toEqual([
      { type: 'party-left', transferId: 'tr', party: 'target', cause: 'NORMAL_CLEARING' },
    ]);
  });

  it('a bridge of the citizen with someone other than the target is not "bridged"', () => {
    const tracker = fresh();
    tracker.apply({ type: 'answer', legId: T });
    expect(tracker.apply({ type: 'bridge', legIds: [C, AG] }).events).toEqual([]);
    expect(tracker.citizenBridgedTo('tr', AG)).toBe(true);
    expect(tracker.apply({ type: 'bridge', legIds: [T, C] }).events).toEqual([{ type: 'bridged', transferId: 'tr' }]);
  });

  it('a three-way transfer is never reported bridged, only conference-joined', () => {
    const tracker = fresh('three-way');
    tracker.setConference('tr', 'hl-tr');
    tracker.apply({ type: 'answer', legId: T });
    expect(tracker.apply({ type: 'bridge', legIds: [C, T] }).events).toEqual([]);
    expect(tracker.apply({ type: 'member-added', conference: 'hl-tr', legId: T, size: 1 }).events).toEqual([]);
    expect(tracker.apply({ type: 'member-added', conference: 'hl-tr', legId: C, size: 2 }).events).toEqual([{ type: 'conference-joined', transferId: 'tr' }]);
  });

  it('a member leaving another conference is none of its business', () => {
    const tracker = fresh('three-way');
    tracker.setConference('tr', 'hl-tr');
    expect(tracker.apply({ type: 'member-left', conference: 'other', legId: C, size: 1, cause: 'X' })).toEqual({ events: [], actions: [] });
  });

  it('after forget, nothing more is reported for that transfer', () => {
    const tracker = fresh();
    tracker.forget('tr');
    expect(tracker.apply({ type: 'hangup', legId: C, cause: 'NORMAL_CLEARING' }).events).toEqual([]);
  });
});

describe('the pre-parse event filter', () => {
  const raw = (file: string) => readConnections(file)[0]!.messages.filter((m) => m.event).map((m) => m.body);
  it('keeps every recorded event that names a tracked leg under any Unique-ID key, and drops the rest', () => {
    const B = '9b40ae71-a13b-4eac-b6db-02bf3d293582';
    const bodies = raw('04-citizen-to-110-bridged.txt');
    const kept = bodies.filter((b) => eventMayConcern(b, (leg) => leg === B));
    // B's own events, plus the citizen's bridge, hangup and unbridge that name B as the other leg.
    // (BACKGROUND_JOB names B only in its result; the connection lets every job result through.)
    const expected = bodies.filter((b) => b.includes(B) && !b.includes('"Event-Name":"BACKGROUND_JOB"'));
    expect(kept).toEqual(expected);
    expect(kept.length).toBeGreaterThan(5);
    expect(kept.length).toBeLessThan(bodies.length);
  });

  it('keeps conference events of this driver\'s conferences even after the transfer is forgotten', () => {
    const event = JSON.stringify({ 'Event-Name': 'CUSTOM', 'Conference-Name': 'hl-tr', Action: 'del-member', 'Unique-ID': 'c0000000-0000-4000-8000-000000000009' });
    expect(eventMayConcern(event, () => false)).toBe(true);
    expect(eventMayConcern(event.replace('hl-tr', 'T-123'), () => false)).toBe(false);
  });
});
