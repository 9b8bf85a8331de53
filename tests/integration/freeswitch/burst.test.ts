import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EslPeer } from '../../support/esl-peer.js';
import { placeCallRequest, testDriver, type TestDriver } from '../../support/esl-driver.js';

describe('a burst of 200 concurrent transfers on one connection', () => {
  let peer: EslPeer;
  let t: TestDriver;
  beforeAll(async () => {
    peer = await EslPeer.start();
    // 200 commands queue on one socket; each reply timer starts when its command is written.
    t = testDriver(peer.port, { commandTimeoutMs: 10_000 });
    t.driver.start();
    await t.driver.ready();
  });
  afterAll(async () => {
    await t.driver.close();
    await peer.close();
  });

  it('every transfer is bridged exactly once, a quarter of them after a busy first trunk, with no event crossing transfers', async () => {
    const N = 200;
    // Every fourth originate through sw110 is busy; those go again through sw110-backup.
    peer.setOutcomes('sw110', Array.from({ length: N }, (_, i) => (i % 4 === 3 ? 'busy' : 'answer')));
    const transfers = Array.from({ length: N }, () => {
      const citizen = randomUUID();
      const agent = randomUUID();
      peer.citizenWithAgent(citizen, agent);
      return { citizen, agent, request: placeCallRequest({ citizenLegId: citizen, agentLegId: agent }) };
    });

    const started = Date.now();
    await Promise.all(
      transfers.map(async ({ citizen, agent, request }) => {
        await t.driver.placeCall(request);
        const outcome = await t.next((e) => e.transferId === request.transferId && (e.type === 'target-answered' || e.type === 'target-failed'), 15_000);
        let legId = request.legId;
        if (outcome.type === 'target-failed') {
          expect(outcome).toMatchObject({ failure: 'busy' });
          legId = randomUUID();
          await t.driver.placeCall({ ...request, legId, target: { ...request.target, trunk: 'sw110-backup' } });
          await t.next((e) => e.type === 'target-answered' && e.legId === legId, 15_000);
        }
        await t.driver.bridgeToTarget({ transferId: request.transferId, citizenLegId: citizen, targetLegId: legId });
        await t.next((e) => e.type === 'bridged' && e.transferId === request.transferId, 15_000);
        await t.driver.releaseAgent({ transferId: request.transferId, agentLegId: agent });
      }),
    );
    const elapsed = Date.now() - started;

    expect(peer.commandsLike('bgapi originate')).toHaveLength(N + N / 4);
    expect(peer.commandsLike('api uuid_bridge')).toHaveLength(N);
    for (const { request } of transfers) {
      const mine = t.events.filter((e) => e.transferId === request.transferId);
      expect(mine.filter((e) => e.type === 'bridged')).toHaveLength(1);
      expect(mine.filter((e) => e.type === 'target-answered')).toHaveLength(1);
    }
    expect(t.events.filter((e) => e.type === 'target-failed')).toHaveLength(N / 4);
    expect(elapsed).toBeLessThan(15_000); // bounded, not a benchmark: see scripts/bench-esl.ts
  });
});
