import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { EslPeer } from '../../support/esl-peer.js';
import { placeCallRequest, testDriver, type TestDriver } from '../../support/esl-driver.js';
import type { SwitchStatus } from '../../../src/ports.js';

async function until(condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the Event Socket connection', () => {
  let peer: EslPeer | null = null;
  let t: TestDriver | null = null;
  afterEach(async () => {
    await t?.driver.close();
    await peer?.close();
    t = null;
    peer = null;
  });

  it('logs in, then subscribes to the channel events, BACKGROUND_JOB before CUSTOM, in JSON', async () => {
    peer = await EslPeer.start();
    t = testDriver(peer.port);
    t.driver.start();
    await t.driver.ready();
    expect(peer.commands.map((c) => c.text)).toEqual([
      'auth ClueCon',
      'event json CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_HANGUP BACKGROUND_JOB CUSTOM conference::maintenance',
    ]);
    expect(t.driver.status()).toMatchObject({ switchId: 'fs-test', kind: 'freeswitch', desk: '12345', state: 'connected' });
  });

  it('with a wrong password, the state is auth-failed with a clear reason and it does not retry', async () => {
    peer = await EslPeer.start({ password: 'TheRightOne' });
    t = testDriver(peer.port, { password: 'WrongPassword' });
    const statuses: SwitchStatus[] = [];
    t.driver.onStatus((s) => statuses.push(s));
    t.driver.start();
    await expect(t.driver.ready()).rejects.toMatchObject({ code: 'auth-failed' });
    await new Promise((r) => setTimeout(r, 300)); // several reconnect intervals (20-200 ms)
    expect(peer.accepted).toBe(1);
    expect(t.driver.status()).toMatchObject({ state: 'auth-failed', detail: expect.stringContaining('-ERR invalid') });
    expect(statuses.at(-1)?.state).toBe('auth-failed');
    await expect(t.driver.placeCall(placeCallRequest({ citizenLegId: randomUUID() }))).rejects.toMatchObject({ code: 'auth-failed' });
    // Asked again later, it answers at once with the same reason rather than waiting for a timeout.
    const started = Date.now();
    await expect(t.driver.ready(5_000)).rejects.toMatchObject({ code: 'auth-failed' });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('when the socket drops mid-transfer and comes back, it subscribes again and settles the transfer from channel state', async () => {
    peer = await EslPeer.start();
    t = testDriver(peer.port);
    t.driver.start();
    await t.driver.ready();
    // Two transfers ringing when the network drops.
    const answeredMeanwhile = { citizen: randomUUID(), agent: randomUUID() };
    const citizenLeftMeanwhile = { citizen: randomUUID() };
    peer.citizenWithAgent(answeredMeanwhile.citizen, answeredMeanwhile.agent);
    peer.citizenCall(citizenLeftMeanwhile.citizen);
    peer.setOutcomes('sw110', ['ring', 'ring']);
    const a = placeCallRequest({ citizenLegId: answeredMeanwhile.citizen, agentLegId: answeredMeanwhile.agent });
    const b = placeCallRequest({ citizenLegId: citizenLeftMeanwhile.citizen });
    await t.driver.placeCall(a);
    await t.driver.placeCall(b);
    await t.next((e) => e.type === 'target-ringing' && e.transferId === b.transferId);

    const states: string[] = [];
    t.driver.onStatus((s) => states.push(s.state));
    peer.down();
    await new Promise((r) => setTimeout(r, 100));
    expect(t.driver.status().state).toBe('disconnected');
    // While the driver is blind: 110 answers transfer a, the citizen of transfer b hangs up
    // (and FreeSWITCH ends b's ringing leg with it).
    peer.answer(a.legId);
    peer.hangUp(citizenLeftMeanwhile.citizen);
    peer.hangUp(b.legId);
    const before = peer.commands.length;
    peer.up();
    await t.driver.ready(3_000);
    await t.next((e) => e.type === 'party-left' && e.transferId === b.transferId);
    await t.next((e) => e.type === 'target-answered' && e.transferId === a.transferId);

    const after = peer.commands.slice(before).map((c) => c.text);
    expect(after.slice(0, 2)).toEqual(['auth ClueCon', expect.stringMatching(/^event json /)]);
    expect(after).toContain(`api uuid_getvar ${a.legId} endpoint_disposition`);
    expect(after).toContain(`api uuid_getvar ${citizenLeftMeanwhile.citizen} bridge_uuid`);
    expect(states).toEqual(expect.arrayContaining(['disconnected', 'connecting', 'connected']));
    expect(t.events.filter((e) => e.transferId === b.transferId).map((e) => e.type)).toEqual(['target-ringing', 'party-left']);
    expect(t.events.find((e) => e.transferId === b.transferId && e.type === 'party-left')).toMatchObject({ party: 'citizen' });
  });

  it('reconcile(inFlight) from the service reports a target leg that vanished as a failure, and a bridged pair as bridged', async () => {
    peer = await EslPeer.start();
    t = testDriver(peer.port);
    t.driver.start();
    await t.driver.ready();
    const citizen = randomUUID();
    const agent = randomUUID();
    peer.citizenWithAgent(citizen, agent);
    const vanished = randomUUID();
    const other = { citizen: randomUUID(), target: randomUUID() };
    peer.citizenWithAgent(other.citizen, other.target); // bridged to each other on the switch
    await new Promise((r) => setTimeout(r, 50)); // their events reach the driver before it knows the legs
    await t.driver.reconcile([
      { transferId: 'tr-vanished', state: 'ringing', mode: 'blind', citizenLegId: citizen, agentLegId: agent, targetLegId: vanished },
      { transferId: 'tr-bridged', state: 'answered', mode: 'blind', citizenLegId: other.citizen, agentLegId: null, targetLegId: other.target },
    ]);
    expect(t.events).toEqual([
      { type: 'target-failed', transferId: 'tr-vanished', legId: vanished, failure: 'unreachable', cause: 'CHANNEL_GONE_WHILE_DISCONNECTED' },
      { type: 'bridged', transferId: 'tr-bridged' },
    ]);
  });

  it('placeCall while the switch is unreachable fails at once with not-connected', async () => {
    peer = await EslPeer.start();
    t = testDriver(peer.port);
    t.driver.start();
    await t.driver.ready();
    peer.down();
    await new Promise((r) => setTimeout(r, 50));
    await expect(t.driver.placeCall(placeCallRequest({ citizenLegId: randomUUID() }))).rejects.toMatchObject({ code: 'not-connected' });
  });

  it('a malformed frame from the switch is logged, the connection is dropped and made again, and work goes on', async () => {
    peer = await EslPeer.start();
    t = testDriver(peer.port);
    t.driver.start();
    await t.driver.ready();
    peer.sendRaw(Buffer.from('Content-Length: 12abc\nContent-Type: text/event-json\n\n'));
    await until(() => peer!.accepted === 2);
    await t.driver.ready(3_000);
    expect(peer.accepted).toBe(2);
    expect(t.log.text()).toMatch(/Content-Length is not a byte count/);
    const citizen = randomUUID();
    peer.citizenCall(citizen);
    const request = placeCallRequest({ citizenLegId: citizen });
    await t.driver.placeCall(request);
    await t.next((e) => e.type === 'target-answered' && e.legId === request.legId);
  });

  it('a frame cut off by the socket closing is reported as truncated, and the driver reconnects', async () => {
    peer = await EslPeer.start();
    t = testDriver(peer.port);
    t.driver.start();
    await t.driver.ready();
    peer.sendRaw(Buffer.from('Content-Length: 917\nContent-Type: text/event-json\n\n{"Event-Name":"BACKGROUND_JOB",'));
    await new Promise((r) => setTimeout(r, 30));
    peer.down();
    peer.up();
    await until(() => peer!.accepted === 2);
    await t.driver.ready(3_000);
    expect(t.log.text()).toMatch(/truncated frame/);
    expect(t.driver.status().state).toBe('connected');
  });

  it('an event whose body is not JSON is skipped without dropping the connection', async () => {
    peer = await EslPeer.start();
    t = testDriver(peer.port);
    t.driver.start();
    await t.driver.ready();
    const citizen = randomUUID();
    peer.citizenCall(citizen);
    peer.setOutcomes('sw110', ['ring']);
    const request = placeCallRequest({ citizenLegId: citizen });
    await t.driver.placeCall(request);
    await t.next((e) => e.type === 'target-ringing');
    // About a leg the driver tracks, so it is not filtered out before parsing.
    const body = `{"Event-Name":"CHANNEL_ANSWER","Unique-ID":"${request.legId}",`;
    peer.sendRaw(Buffer.from(`Content-Length: ${body.length}\nContent-Type: text/event-json\n\n${body}`));
    peer.answer(request.legId);
    await t.next((e) => e.type === 'target-answered');
    expect(peer.accepted).toBe(1);
    expect(t.log.text()).toMatch(/unreadable event body/);
  });

  it('a switch that stops answering commands is timed out and the connection made again', async () => {
    peer = await EslPeer.start();
    t = testDriver(peer.port, { commandTimeoutMs: 200 });
    t.driver.start();
    await t.driver.ready();
    const citizen = randomUUID();
    peer.citizenCall(citizen);
    peer.mute(true);
    await expect(t.driver.releaseAgent({ transferId: 'tr', agentLegId: citizen })).rejects.toMatchObject({ code: 'timeout' });
    peer.mute(false);
    await until(() => peer!.accepted === 2);
    await t.driver.ready(3_000);
    expect(peer.accepted).toBe(2);
  });

  it('an originate job with no result by its deadline is a no-answer failure, and the leg is killed', async () => {
    peer = await EslPeer.start();
    t = testDriver(peer.port, { jobGraceMs: 200 });
    t.driver.start();
    await t.driver.ready();
    const citizen = randomUUID();
    peer.citizenCall(citizen);
    peer.setOutcomes('sw110', ['ring']); // rings for ever: FreeSWITCH's own CANCEL never comes
    const request = placeCallRequest({ citizenLegId: citizen, answerTimeoutSeconds: 1 });
    await t.driver.placeCall(request);
    const failed = await t.next((e) => e.type === 'target-failed', 3_000);
    expect(failed).toMatchObject({ failure: 'no-answer', cause: 'ESL_JOB_TIMEOUT' });
    await until(() => peer!.commandsLike(`api uuid_kill ${request.legId}`).length === 1);
  });

  it('a job result lost while disconnected does not kill a leg the reconcile found answered and that is now bridged', async () => {
    peer = await EslPeer.start();
    t = testDriver(peer.port, { jobGraceMs: 300 });
    t.driver.start();
    await t.driver.ready();
    const citizen = randomUUID();
    peer.citizenCall(citizen);
    peer.setOutcomes('sw110', ['ring']);
    const request = placeCallRequest({ citizenLegId: citizen, answerTimeoutSeconds: 1 });
    await t.driver.placeCall(request);
    await t.next((e) => e.type === 'target-ringing');
    peer.down();
    await until(() => t!.driver.status().state !== 'connected');
    peer.answer(request.legId); // its "+OK" job result goes to nobody
    peer.up();
    await t.next((e) => e.type === 'target-answered', 3_000);
    await t.driver.bridgeToTarget({ transferId: request.transferId, citizenLegId: citizen, targetLegId: request.legId });
    await t.next((e) => e.type === 'bridged');
    await new Promise((r) => setTimeout(r, 1_500)); // past the job's deadline (1 s + 0.3 s)
    expect(t.events.filter((e) => e.type === 'target-failed')).toEqual([]);
    expect(peer.commandsLike('api uuid_kill')).toEqual([]);
    expect(peer.channels.get(citizen)?.bridgedTo).toBe(request.legId);
  });

  it('while nothing listens on the port, it keeps retrying with backoff and says why', async () => {
    const { freePort } = await import('../../support/redis-server.js');
    const port = await freePort();
    t = testDriver(port, { reconnectInitialMs: 20, reconnectMaxMs: 80 });
    const details: string[] = [];
    t.driver.onStatus((s) => details.push(`${s.state}: ${s.detail ?? ''}`));
    t.driver.start();
    await until(() => details.filter((d) => d.startsWith('disconnected')).length >= 4);
    expect(details.find((d) => d.startsWith('disconnected'))).toMatch(/cannot connect \(ECONNREFUSED\); retry 1 in \d+ ms/);
    // Backoff: the announced delays grow until the cap (±20% jitter).
    const delays = details.filter((d) => d.startsWith('disconnected')).map((d) => Number(/in (\d+) ms/.exec(d)?.[1]));
    expect(delays[0]).toBeLessThanOrEqual(24);
    expect(Math.max(...delays)).toBeGreaterThanOrEqual(60);
    expect(Math.max(...delays)).toBeLessThanOrEqual(96);
    // The switch comes up on that port: the driver connects without being told.
    peer = await EslPeer.startOn(port);
    await t.driver.ready(3_000);
    expect(t.driver.status().state).toBe('connected');
  });

  it('a switch that hangs while idle is noticed by the heartbeat and the connection made again', async () => {
    peer = await EslPeer.start();
    t = testDriver(peer.port, { heartbeatMs: 50, commandTimeoutMs: 150 });
    t.driver.start();
    await t.driver.ready();
    await until(() => peer!.commandsLike('api status').length >= 2); // answered heartbeats
    expect(peer.accepted).toBe(1);
    peer.mute(true); // FreeSWITCH stops answering, the socket stays open
    await until(() => t!.driver.status().state !== 'connected');
    peer.mute(false);
    await until(() => peer!.accepted === 2);
    await t.driver.ready(3_000);
  });
});
