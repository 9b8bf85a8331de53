// Switch events a transfer's queue holds at once are stored in as few writes as its effects allow,
// against a real redis-server and the CallControl test peer: what was written, and in what order with
// the commands the switch was sent.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CallControlEvent, TransferStep } from '../../src/ports.js';
import { auth, startHarness, transferBody, type Harness } from '../support/harness.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => redis.stop());

describe('switch events that wait together for a transfer', () => {
  let h: Harness;
  /** Each write's events ("write: a + b") and each command to the switch, in the order they happened. */
  let timeline: string[];
  /** Added to every write after the transfer is created: keeps the transfer's queue busy meanwhile. */
  let writeDelayMs: number;

  beforeEach(async () => {
    h = await startHarness({ redisUrl: redis.url });
    timeline = [];
    writeDelayMs = 0;
    const save = h.transfers.save.bind(h.transfers);
    h.transfers.save = async (steps: readonly TransferStep[]) => {
      if (writeDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, writeDelayMs));
      const outcome = await save(steps);
      timeline.push(`write: ${steps.map((step) => step.record.event).join(' + ')}`);
      return outcome;
    };
    const cc = h.callControl;
    for (const name of ['bridgeToTarget', 'releaseAgent', 'returnToAgent', 'hangUp'] as const) {
      const command = cc[name].bind(cc) as (legs: never) => Promise<void>;
      (cc as unknown as Record<string, unknown>)[name] = (legs: never) => {
        timeline.push(name);
        return command(legs);
      };
    }
  });
  afterEach(async () => h.close());

  /** A blind transfer to 110 whose far side rings and waits; its id and the leg dialled. */
  async function ringing(): Promise<{ id: string; legId: string }> {
    h.callControl.answers.set('sw110', 'ring-only');
    const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody() });
    expect(res.statusCode).toBe(202);
    const id = res.json().transfer.id as string;
    await expect.poll(() => timeline).toContain('write: target-ringing');
    const legId = (await h.service.get(id)).targetLegId!;
    timeline.length = 0;
    return { id, legId };
  }

  async function auditEvents(id: string): Promise<string[]> {
    const res = await h.app.inject({ method: 'GET', url: `/v1/transfers/${id}/audit`, headers: auth('supervisor') });
    return (res.json() as { transitions: { event: string }[] }).transitions.map((record) => record.event);
  }

  it('stores ringing and answer reported together in one write, and bridges only once it is stored', async () => {
    // The test peer reports the far side ringing and answering in the same moment.
    const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody() });
    const id = res.json().transfer.id as string;
    await expect.poll(async () => (await h.service.get(id)).state).toBe('bridged');
    await expect.poll(() => timeline.at(-1)).toBe('write: party-left');
    expect(timeline).toEqual([
      'write: target-ringing + target-answered',
      'bridgeToTarget',
      'write: bridged',
      'releaseAgent',
      'write: party-left',
    ]);
    expect(await auditEvents(id)).toEqual([
      'created',
      'stub-stored',
      'dial-started',
      'target-ringing',
      'target-answered',
      'bridged',
      'party-left',
    ]);
  });

  it('ends a write at an effect: an event after it is applied once the effect is sent', async () => {
    const { id, legId } = await ringing();
    h.callControl.emit({ type: 'target-answered', transferId: id, legId });
    h.callControl.emit({ type: 'bridged', transferId: id });
    await expect.poll(() => timeline.at(-1)).toBe('write: party-left');
    // The test peer reports its own 'bridged' after the bridge command too: refused, as a repeat.
    expect(timeline.slice(0, 4)).toEqual(['write: target-answered', 'bridgeToTarget', 'write: bridged', 'releaseAgent']);
    expect((await h.service.get(id)).state).toBe('bridged');
  });

  it('stores what came before a refused event, reports the refusal, then goes on with the rest', async () => {
    const { id, legId } = await ringing();
    const event = (e: CallControlEvent) => h.callControl.emit(e);
    event({ type: 'target-ringing', transferId: id, legId }); // 180 after 183: still ringing
    event({ type: 'bridged', transferId: id }); // nothing is answered yet: refused
    event({ type: 'target-answered', transferId: id, legId });
    await expect.poll(() => timeline.at(-1)).toBe('write: party-left');
    expect(timeline.slice(0, 3)).toEqual(['write: target-ringing', 'write: target-answered', 'bridgeToTarget']);
    expect(h.logs.filter((l) => l.msg === 'transition refused').map((l) => [l.state, l.event])).toContainEqual(['ringing', 'bridged']);
    expect(await auditEvents(id)).toEqual([
      'created',
      'stub-stored',
      'dial-started',
      'target-ringing',
      'target-ringing',
      'target-answered',
      'bridged',
      'party-left',
    ]);
  });

  it("drops a late report of an earlier trunk's leg among them and applies the rest", async () => {
    const { id, legId } = await ringing();
    h.callControl.emit({ type: 'target-answered', transferId: id, legId: 'an-earlier-leg' });
    h.callControl.emit({ type: 'target-ringing', transferId: id, legId });
    await expect.poll(() => timeline).toEqual(['write: target-ringing']);
    expect(h.logs.some((l) => l.msg === 'event for a leg no longer dialled' && l.event === 'target-answered')).toBe(true);
    expect((await h.service.get(id)).state).toBe('ringing');
  });

  it('keeps work queued between two events in its place: a cancel between ringing and answer wins', async () => {
    const { id, legId } = await ringing();
    // A write in flight holds the queue, so what follows waits in it.
    writeDelayMs = 50;
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    h.callControl.emit({ type: 'target-ringing', transferId: id, legId });
    await turn();
    h.callControl.emit({ type: 'target-ringing', transferId: id, legId });
    const cancelled = h.app.inject({ method: 'DELETE', url: `/v1/transfers/${id}`, headers: auth('agent') });
    // The cancel has reached the queue once the event loop has gone round (it reads nothing remotely).
    await turn();
    h.callControl.emit({ type: 'target-answered', transferId: id, legId });
    expect((await cancelled).statusCode).toBe(200);
    // The answer came after the cancel, for a transfer that had ended: nothing more is written.
    await new Promise((resolve) => setTimeout(resolve, 3 * writeDelayMs));
    expect(timeline).toEqual(['write: target-ringing', 'write: target-ringing', 'write: cancel-requested', 'hangUp', 'returnToAgent']);
    expect((await h.service.get(id)).state).toBe('cancelled');
    expect(await auditEvents(id)).not.toContain('target-answered');
  });
});
