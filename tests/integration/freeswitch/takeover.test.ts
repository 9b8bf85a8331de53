// Issue 3, item 5: two service instances, two switches; each transfer is driven by the holder of its
// lease, and when that instance dies another takes the transfer over and settles it from channel state.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisTransferLease } from '../../../src/adapters/redis/transfer-lease.js';
import { EslPeer } from '../../support/esl-peer.js';
import { placeCallRequest, testDriver, type TestDriver } from '../../support/esl-driver.js';
import { startRedis, type RedisServer } from '../../support/redis-server.js';

interface Instance {
  readonly name: string;
  readonly lease: RedisTransferLease;
  readonly redis: Redis;
  readonly onSwitch: Record<'fs12345' | 'fs110', TestDriver>;
}

describe('two service instances and two FreeSWITCH peers', () => {
  let redisServer: RedisServer;
  const peers = {} as Record<'fs12345' | 'fs110', EslPeer>;
  const instances: Instance[] = [];

  beforeAll(async () => {
    redisServer = await startRedis();
    peers.fs12345 = await EslPeer.start();
    peers.fs110 = await EslPeer.start();
    for (const name of ['svc-1', 'svc-2']) {
      const redis = new Redis(redisServer.url, { maxRetriesPerRequest: 1 });
      const onSwitch = {
        fs12345: testDriver(peers.fs12345.port, { switchId: 'fs12345', desk: '12345' }),
        fs110: testDriver(peers.fs110.port, { switchId: 'fs110', desk: '110' }),
      };
      for (const t of Object.values(onSwitch)) t.driver.start();
      await Promise.all(Object.values(onSwitch).map((t) => t.driver.ready()));
      instances.push({ name, redis, lease: new RedisTransferLease(redis, { holderId: name, ttlMs: 300 }), onSwitch });
    }
  });
  afterAll(async () => {
    for (const i of instances) {
      for (const t of Object.values(i.onSwitch)) await t.driver.close();
      i.redis.disconnect();
    }
    await peers.fs12345.close();
    await peers.fs110.close();
    await redisServer.stop();
  });

  it('each transfer is driven by its lease holder on the switch holding the citizen, and survives its driver dying', async () => {
    const [one, two] = instances as [Instance, Instance];

    // 12345→110: the citizen is on the 12345 switch; svc-1 wins the lease.
    const x = { citizen: randomUUID(), agent: randomUUID() };
    peers.fs12345.citizenWithAgent(x.citizen, x.agent);
    peers.fs12345.setOutcomes('sw110', ['ring']);
    const xRequest = placeCallRequest({ citizenLegId: x.citizen, agentLegId: x.agent });
    expect(await one.lease.acquire(xRequest.transferId)).toBe(true);
    expect(await two.lease.acquire(xRequest.transferId)).toBe(false);
    await one.onSwitch.fs12345.driver.placeCall(xRequest);
    await one.onSwitch.fs12345.next((e) => e.type === 'target-ringing' && e.transferId === xRequest.transferId);

    // 110→12345: the citizen is on the 110 switch; svc-2 wins that lease and completes it.
    const y = { citizen: randomUUID(), agent: randomUUID() };
    peers.fs110.citizenWithAgent(y.citizen, y.agent);
    const yRequest = placeCallRequest({
      citizenLegId: y.citizen,
      agentLegId: y.agent,
      sourceDesk: '110',
      target: { desk: '12345', number: '12345', trunk: 'sw12345' },
    });
    expect(await two.lease.acquire(yRequest.transferId)).toBe(true);
    expect(await one.lease.acquire(yRequest.transferId)).toBe(false);
    await two.onSwitch.fs110.driver.placeCall(yRequest);
    await two.onSwitch.fs110.next((e) => e.type === 'target-answered' && e.transferId === yRequest.transferId);
    await two.onSwitch.fs110.driver.bridgeToTarget({ transferId: yRequest.transferId, citizenLegId: y.citizen, targetLegId: yRequest.legId });
    await two.onSwitch.fs110.next((e) => e.type === 'bridged' && e.transferId === yRequest.transferId);
    expect(peers.fs110.commandsLike('bgapi originate')[0]).toContain('sip_h_Diversion=<sip:110@hotline.example.cn>');

    // svc-1 dies: its connections close and it stops renewing. 110 answers transfer x meanwhile.
    await one.onSwitch.fs12345.driver.close();
    await one.onSwitch.fs110.driver.close();
    peers.fs12345.answer(xRequest.legId);
    // svc-2 sees the switch's events, but does not act on a transfer it does not hold.
    await new Promise((r) => setTimeout(r, 50));
    expect(two.onSwitch.fs12345.events.filter((e) => e.transferId === xRequest.transferId)).toEqual([]);

    // The lease expires; svc-2 takes x over and settles it from the switch's channel state.
    let taken = false;
    const deadline = Date.now() + 3_000;
    while (!taken && Date.now() < deadline) {
      taken = await two.lease.acquire(xRequest.transferId);
      if (!taken) await new Promise((r) => setTimeout(r, 50));
    }
    expect(taken).toBe(true);
    await two.onSwitch.fs12345.driver.reconcile([
      { transferId: xRequest.transferId, state: 'ringing', mode: 'blind', citizenLegId: x.citizen, agentLegId: x.agent, targetLegId: xRequest.legId },
    ]);
    await two.onSwitch.fs12345.next((e) => e.type === 'target-answered' && e.transferId === xRequest.transferId);
    await two.onSwitch.fs12345.driver.bridgeToTarget({ transferId: xRequest.transferId, citizenLegId: x.citizen, targetLegId: xRequest.legId });
    await two.onSwitch.fs12345.next((e) => e.type === 'bridged' && e.transferId === xRequest.transferId);
    await two.onSwitch.fs12345.driver.releaseAgent({ transferId: xRequest.transferId, agentLegId: x.agent });

    // The bridge came from svc-2's connection, not svc-1's.
    const bridge = peers.fs12345.commands.find((c) => c.text === `api uuid_bridge ${x.citizen} ${xRequest.legId}`);
    const originate = peers.fs12345.commands.find((c) => c.text.startsWith('bgapi originate'));
    expect(bridge?.connection).toBeDefined();
    expect(bridge?.connection).not.toBe(originate?.connection);
    expect(peers.fs12345.channels.get(x.citizen)?.bridgedTo).toBe(xRequest.legId);
  });
});
