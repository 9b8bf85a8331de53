import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EslPeer } from '../../support/esl-peer.js';
import { placeCallRequest, testDriver, type TestDriver } from '../../support/esl-driver.js';

describe('three-way call (三方通话) through a conference, against the recorded conference events (06)', () => {
  let peer: EslPeer;
  let t: TestDriver;
  beforeEach(async () => {
    peer = await EslPeer.start();
    t = testDriver(peer.port);
    t.driver.start();
    await t.driver.ready();
  });
  afterEach(async () => {
    await t.driver.close();
    await peer.close();
  });

  async function threeWay() {
    const citizen = randomUUID();
    const agent = randomUUID();
    peer.citizenWithAgent(citizen, agent);
    const request = placeCallRequest({ citizenLegId: citizen, agentLegId: agent, mode: 'three-way' });
    await t.driver.placeCall(request);
    await t.next((e) => e.type === 'target-answered');
    await t.driver.joinConference({ transferId: request.transferId, citizenLegId: citizen, agentLegId: agent, targetLegId: request.legId });
    await t.next((e) => e.type === 'conference-joined');
    return { citizen, agent, target: request.legId, transferId: request.transferId };
  }

  it('when 110 answers, citizen, agent and 110 are in one conference named after the transfer', async () => {
    const { citizen, agent, target, transferId } = await threeWay();
    const name = `hl-${transferId}`;
    expect(peer.commandsLike('api uuid_transfer')).toEqual([
      `api uuid_transfer ${citizen} -both conference:${name}@default inline`,
      `api uuid_transfer ${target} conference:${name}@default inline`,
    ]);
    for (const leg of [citizen, agent, target]) expect(peer.channels.get(leg)?.conference).toBe(name);
    expect(t.events.filter((e) => e.type === 'conference-joined')).toHaveLength(1);
  });

  it('when the agent leaves, the agent is reported gone and the citizen and 110 stay (three-way becomes blind)', async () => {
    const { citizen, agent, target, transferId } = await threeWay();
    peer.hangUp(agent);
    const left = await t.next((e) => e.type === 'party-left');
    expect(left).toEqual({ type: 'party-left', transferId, party: 'agent', cause: 'NORMAL_CLEARING' });
    expect(peer.channels.has(citizen)).toBe(true);
    expect(peer.channels.has(target)).toBe(true);
    expect(peer.commandsLike('api conference')).toEqual([]);
  });

  it('when 110 leaves, 110 is reported gone once and the citizen stays with the agent', async () => {
    const { citizen, agent, target, transferId } = await threeWay();
    peer.hangUp(target);
    await t.next((e) => e.type === 'party-left');
    await new Promise((r) => setTimeout(r, 50));
    expect(t.events.filter((e) => e.type === 'party-left')).toEqual([{ type: 'party-left', transferId, party: 'target', cause: 'NORMAL_CLEARING' }]);
    expect(peer.channels.has(citizen)).toBe(true);
    expect(peer.channels.has(agent)).toBe(true);
  });

  it('when only one party is left in the conference, the driver ends it (conference … hup all)', async () => {
    const { citizen, agent, target, transferId } = await threeWay();
    peer.hangUp(agent);
    await t.next((e) => e.type === 'party-left' && e.party === 'agent');
    peer.hangUp(target);
    await t.next((e) => e.type === 'party-left' && e.party === 'target');
    const deadline = Date.now() + 2_000;
    while (peer.channels.has(citizen) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(peer.commandsLike('api conference')).toEqual([`api conference hl-${transferId} hup all`]);
    expect(peer.channels.has(citizen)).toBe(false);
  });
});
