// The nuisance mark never holds up a call: the place-call leaves while the lookup is still on its way,
// the mark joins the transfer when the lookup answers, a transfer the switch refuses at once still ends
// with it, and only a stored transfer counts as a call of the number.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryNuisanceStore } from '../../src/adapters/memory/memory-nuisance-store.js';
import type { CallStanding } from '../../src/policy/nuisance.js';
import { auth, transferBody } from '../support/harness.js';
import { startPolicyHarness, type PolicyHarness } from '../support/policy-harness.js';

/** The memory store, its lookups held until the test lets them through. */
class HeldNuisanceStore extends MemoryNuisanceStore {
  lookups = 0;
  failing = false;
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.open();
  }

  override async countCall(numberHash: string, at: Date, windowSeconds: number): Promise<CallStanding> {
    this.lookups += 1;
    await this.gate;
    if (this.failing) throw new Error('connection reset');
    return super.countCall(numberHash, at, windowSeconds);
  }
}

const ticket = (categoryCode: string) => ({ ...transferBody().ticket, categoryCode });
const toPolice = (overrides: Parameters<typeof transferBody>[0] = {}) => transferBody({ ticket: ticket('1.02'), ...overrides });
const THREATENING = { flagged: 'threatening', recentCalls: 1, repeated: false } as const;

describe('the nuisance mark', () => {
  let h: PolicyHarness;
  let store: HeldNuisanceStore;
  afterEach(async () => {
    store.release();
    await h?.close();
  });

  async function start(): Promise<void> {
    store = new HeldNuisanceStore();
    h = await startPolicyHarness({ nuisance: store });
    const flagged = await h.app.inject({
      method: 'POST', url: '/v1/nuisance/flags', headers: auth('agent'),
      payload: { callerNumber: '13800138000', kind: 'threatening', note: '多次扬言报复' },
    });
    expect(flagged.statusCode).toBe(201);
  }

  const placedCalls = () => h.callControl.commands.filter((c) => c.type === 'placeCall');
  const placedTransferId = () => {
    const [placed] = placedCalls();
    if (placed?.type !== 'placeCall') throw new Error('no call was placed');
    return placed.request.transferId;
  };
  const view = async (id: string) => (await h.app.inject({ url: `/v1/transfers/${id}`, headers: auth('supervisor') })).json();

  it('lets the call leave before the lookup answers, then joins the transfer, its answer and its record', async () => {
    await start();
    store.hold();
    const answer = h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: toPolice() });

    await expect.poll(() => placedCalls().length).toBe(1);
    expect(store.lookups).toBe(1);
    const id = placedTransferId();
    expect(await view(id)).toMatchObject({ state: 'dialing', routing: { basis: 'list', nuisance: null } });

    store.release();
    const res = await answer;
    expect(res.statusCode).toBe(202);
    expect(res.json().transfer).toMatchObject({ id, state: 'dialing', routing: { nuisance: THREATENING } });
    expect((await view(id)).routing.nuisance).toEqual(THREATENING);
    await expect.poll(async () => (await h.records.get(id))?.routing?.nuisance).toEqual(THREATENING);
    const record = await h.records.get(id);
    // Before anything the far side does: the mark was queued behind the place-call, ahead of its events.
    expect(record?.transitions.slice(0, 4).map((t) => [t.event, t.from, t.to])).toEqual([
      ['created', null, 'requested'],
      ['stub-stored', 'requested', 'stub-stored'],
      ['dial-started', 'stub-stored', 'dialing'],
      ['nuisance-checked', 'dialing', 'dialing'],
    ]);
  });

  it('keeps a transfer the switch refuses at once open until its mark is in, so its record has it', async () => {
    await start();
    store.hold();
    h.callControl.placeCallError = Object.assign(new Error('CALL_REJECTED'), { failure: 'rejected' as const });
    const answer = h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: toPolice() });
    await expect.poll(() => placedCalls().length).toBe(1);
    const id = placedTransferId();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await view(id)).state).toBe('dialing');

    store.release();
    const res = await answer;
    expect(res.json().transfer).toMatchObject({ id, state: 'failed', failure: { reason: 'rejected' }, routing: { nuisance: THREATENING } });
    expect(h.callControl.commands.some((c) => c.type === 'returnToAgent' && c.transferId === id)).toBe(true);
    await expect.poll(async () => (await h.records.get(id))?.state).toBe('failed');
    const record = await h.records.get(id);
    expect(record?.routing?.nuisance).toEqual(THREATENING);
    expect(record?.transitions.map((t) => t.event).slice(-2)).toEqual(['nuisance-checked', 'target-failed']);
  });

  it('counts a double press and a second transfer of a call in progress as one call of the number', async () => {
    await start();
    const body = toPolice();
    const headers = { ...auth('agent'), 'idempotency-key': 'press-1' };
    const presses = await Promise.all([
      h.app.inject({ method: 'POST', url: '/v1/transfers', headers, payload: body }),
      h.app.inject({ method: 'POST', url: '/v1/transfers', headers, payload: body }),
    ]);
    expect(presses.map((p) => p.statusCode)).toEqual([202, 202]);
    expect(new Set(presses.map((p) => p.json().transfer.id)).size).toBe(1);
    const busy = await h.app.inject({
      method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: { ...body, ticket: ticket('1.02') },
    });
    expect(busy.json().error.code).toBe('call_already_transferring');

    const lookup = await h.app.inject({ method: 'POST', url: '/v1/nuisance/lookup', headers: auth('agent'), payload: { callerNumber: '13800138000' } });
    expect(lookup.json()).toMatchObject({ flag: { kind: 'threatening' }, recentCalls: 1 });
    const next = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: toPolice() });
    expect(next.json().transfer.routing.nuisance).toEqual({ ...THREATENING, recentCalls: 2 });
  });

  it('leaves the mark unknown when the lookup fails, and the transfer goes on', async () => {
    await start();
    store.failing = true;
    const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: toPolice() });
    expect(res.statusCode).toBe(202);
    expect(res.json().transfer).toMatchObject({ state: 'dialing', routing: { basis: 'list', nuisance: null } });
    expect(placedCalls()).toHaveLength(1);
    expect(h.rawLogs.some((line) => line.includes('nuisance lookup failed'))).toBe(true);
    const id = res.json().transfer.id;
    await expect.poll(async () => (await h.records.get(id))?.transitions.map((t) => t.event)).toContain('bridged');
    expect((await h.records.get(id))?.transitions.map((t) => t.event)).not.toContain('nuisance-checked');
  });
});
