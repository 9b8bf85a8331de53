// SIGTERM: stop taking new transfers, let live ones finish up to a deadline.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auth, startHarness, transferBody, type Harness } from '../support/harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => h.close());

describe('draining', () => {
  it('refuses new transfers with 503 shutting_down and waits for live ones to end', async () => {
    h.callControl.answers.set('sw110', 'ring-only');
    const id = (await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody() })).json().transfer
      .id as string;
    const legId = (await h.service.get(id)).targetLegId!;

    let drained = false;
    const draining = h.service.drain(10_000).then((r) => {
      drained = true;
      return r;
    });
    const refused = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody() });
    expect(refused.statusCode).toBe(503);
    expect(refused.json().error.code).toBe('shutting_down');
    expect((await h.app.inject({ method: 'GET', url: '/health/ready' })).json().draining).toBe(true);

    await new Promise((r) => setTimeout(r, 50));
    expect(drained).toBe(false);
    h.callControl.emit({ type: 'target-answered', transferId: id, legId });
    expect(await draining).toEqual({ unfinished: 0 });
    expect((await h.service.get(id)).state).toBe('bridged');
  });

  it('gives up at the deadline and says how many were still live', async () => {
    h.callControl.answers.set('sw110', 'ring-only');
    await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody() });
    const started = Date.now();
    expect(await h.service.drain(200)).toEqual({ unfinished: 1 });
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
