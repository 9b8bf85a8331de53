import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EslPeer } from '../../support/esl-peer.js';
import { placeCallRequest, testDriver, type TestDriver } from '../../support/esl-driver.js';

describe('blind transfer through the ESL driver against the recorded FreeSWITCH replies', () => {
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

  it('when 110 answers, the citizen is bridged to it and the agent is released', async () => {
    const citizen = randomUUID();
    const agent = randomUUID();
    peer.citizenWithAgent(citizen, agent);
    const request = placeCallRequest({ citizenLegId: citizen, agentLegId: agent });
    await t.driver.placeCall(request);
    await t.next((e) => e.type === 'target-answered');
    expect(t.events.map((e) => e.type)).toEqual(['target-ringing', 'target-answered']);
    await t.driver.bridgeToTarget({ transferId: request.transferId, citizenLegId: citizen, targetLegId: request.legId });
    await t.next((e) => e.type === 'bridged');
    await t.driver.releaseAgent({ transferId: request.transferId, agentLegId: agent });
    expect(peer.commandsLike('api uuid_kill')).toEqual([`api uuid_kill ${agent}`]);
    expect(peer.channels.has(agent)).toBe(false);
    expect(peer.channels.get(citizen)?.bridgedTo).toBe(request.legId);
    const originate = peer.commandsLike('bgapi originate')[0] ?? '';
    expect(originate).toContain(`origination_uuid=${request.legId}`);
    expect(originate).toContain('sofia/gateway/sw110/110 &park');
    expect(originate).toMatch(/\nJob-UUID: [0-9a-f-]{36}$/);
  });
});
