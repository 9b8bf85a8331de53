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

describe('backup trunks and failures, one originate per placeCall', () => {
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

  it('when the first trunk answers 486 Busy Here, the failure is busy, and the backup trunk then connects', async () => {
    const citizen = randomUUID();
    const agent = randomUUID();
    peer.citizenWithAgent(citizen, agent);
    peer.setOutcomes('sw110', ['busy']);
    const first = placeCallRequest({ citizenLegId: citizen, agentLegId: agent });
    await t.driver.placeCall(first);
    const failed = await t.next((e) => e.type === 'target-failed');
    expect(failed).toEqual({ type: 'target-failed', transferId: first.transferId, legId: first.legId, failure: 'busy', cause: 'USER_BUSY' });

    // The service places the next call through the backup gateway (备用专线), same transfer.
    const second = { ...first, legId: randomUUID(), target: { ...first.target, trunk: 'sw110-backup' } };
    await t.driver.placeCall(second);
    await t.next((e) => e.type === 'target-answered' && e.legId === second.legId);
    await t.driver.bridgeToTarget({ transferId: first.transferId, citizenLegId: citizen, targetLegId: second.legId });
    await t.next((e) => e.type === 'bridged');
    expect(peer.commandsLike('bgapi originate').map((c) => /sofia\/gateway\/([^/]+)\//.exec(c)?.[1])).toEqual(['sw110', 'sw110-backup']);
    // Exactly one failure reported, though FreeSWITCH said it twice (CHANNEL_HANGUP and the job result).
    expect(t.events.filter((e) => e.type === 'target-failed')).toHaveLength(1);
  });

  it.each([
    ['unavailable', 'unreachable', 'NO_USER_RESPONSE'],
    ['no-answer', 'no-answer', 'NO_ANSWER'],
    ['invalid-gateway', 'trunk-down', 'INVALID_GATEWAY'],
  ] as const)('when the trunk gives %s, the failure is %s with the cause %s', async (outcome, failure, cause) => {
    const citizen = randomUUID();
    peer.citizenCall(citizen);
    peer.setOutcomes('sw110', [outcome]);
    const request = placeCallRequest({ citizenLegId: citizen });
    await t.driver.placeCall(request);
    const event = await t.next((e) => e.type === 'target-failed');
    expect(event).toMatchObject({ failure, cause, legId: request.legId });
  });

  it('when every trunk fails, returnToAgent bridges the citizen back to the agent and the citizen is with the agent', async () => {
    const citizen = randomUUID();
    const agent = randomUUID();
    // The citizen is parked (as in 05) and the agent's leg is up on its own.
    peer.citizenCall(citizen);
    peer.citizenCall(agent);
    peer.setOutcomes('sw110', ['busy']);
    peer.setOutcomes('sw110-backup', ['unavailable']);
    const first = placeCallRequest({ citizenLegId: citizen, agentLegId: agent });
    await t.driver.placeCall(first);
    await t.next((e) => e.type === 'target-failed' && e.legId === first.legId);
    const second = { ...first, legId: randomUUID(), target: { ...first.target, trunk: 'sw110-backup' } };
    await t.driver.placeCall(second);
    await t.next((e) => e.type === 'target-failed' && e.legId === second.legId);

    await t.driver.returnToAgent({ transferId: first.transferId, citizenLegId: citizen, agentLegId: agent, reason: 'unreachable' });
    expect(peer.commandsLike('api uuid_bridge')).toEqual([`api uuid_bridge ${citizen} ${agent}`]);
    expect(peer.channels.get(citizen)?.bridgedTo).toBe(agent);
  });

  it('when the citizen is still bridged to the agent, returnToAgent leaves the call alone', async () => {
    const citizen = randomUUID();
    const agent = randomUUID();
    peer.citizenWithAgent(citizen, agent);
    await t.driver.returnToAgent({ transferId: randomUUID(), citizenLegId: citizen, agentLegId: agent, reason: 'busy' });
    expect(peer.commandsLike('api uuid_bridge')).toEqual([]);
    expect(peer.channels.get(citizen)?.bridgedTo).toBe(agent);
  });

  it('when the agent leg is gone, returnToAgent sends the citizen to the configured return destination', async () => {
    await t.driver.close();
    t = testDriver(peer.port, { returnDestination: { extension: '12345', context: 'default' } });
    t.driver.start();
    await t.driver.ready();
    const citizen = randomUUID();
    peer.citizenCall(citizen);
    const agent = randomUUID();
    await t.driver.returnToAgent({ transferId: randomUUID(), citizenLegId: citizen, agentLegId: agent, reason: 'busy' });
    expect(peer.commandsLike('api uuid_transfer')).toEqual([`api uuid_transfer ${citizen} 12345 XML default`]);
  });

  it('when the agent leg is gone and no return destination is configured, returnToAgent says so', async () => {
    const citizen = randomUUID();
    peer.citizenCall(citizen);
    await expect(
      t.driver.returnToAgent({ transferId: randomUUID(), citizenLegId: citizen, agentLegId: randomUUID(), reason: 'busy' }),
    ).rejects.toMatchObject({ code: 'command-failed' });
  });

  it('when the citizen hangs up while 110 rings, the citizen is reported gone and the ringing leg can be hung up', async () => {
    const citizen = randomUUID();
    peer.citizenCall(citizen);
    peer.setOutcomes('sw110', ['ring']);
    const request = placeCallRequest({ citizenLegId: citizen });
    await t.driver.placeCall(request);
    await t.next((e) => e.type === 'target-ringing');
    peer.hangUp(citizen);
    const left = await t.next((e) => e.type === 'party-left');
    expect(left).toEqual({ type: 'party-left', transferId: request.transferId, party: 'citizen', cause: 'NORMAL_CLEARING' });
    await t.driver.hangUp({ transferId: request.transferId, legId: request.legId, cause: 'ORIGINATOR_CANCEL' });
    expect(peer.commandsLike('api uuid_kill')).toEqual([`api uuid_kill ${request.legId} ORIGINATOR_CANCEL`]);
    expect(peer.channels.has(request.legId)).toBe(false);
  });

  it('when uuid_bridge meets a leg that is gone, bridgeToTarget fails with FreeSWITCH\'s words', async () => {
    const citizen = randomUUID();
    peer.citizenCall(citizen);
    await expect(
      t.driver.bridgeToTarget({ transferId: randomUUID(), citizenLegId: citizen, targetLegId: randomUUID() }),
    ).rejects.toMatchObject({ code: 'command-failed', reply: '-ERR Invalid uuid' });
  });

  it('when releasing an agent whose leg is already gone, that is not an error (-ERR No such channel!)', async () => {
    await expect(t.driver.releaseAgent({ transferId: randomUUID(), agentLegId: randomUUID() })).resolves.toBeUndefined();
  });

  it('never writes the citizen\'s whole number into a log line', async () => {
    const citizen = randomUUID();
    peer.citizenCall(citizen);
    peer.setOutcomes('sw110', ['busy']);
    await t.driver.placeCall(placeCallRequest({ citizenLegId: citizen }));
    await t.next((e) => e.type === 'target-failed');
    expect(t.log.lines.length).toBeGreaterThan(0);
    expect(t.log.text()).toContain('138****8000');
    expect(t.log.text()).not.toContain('13800138000');
  });
});
