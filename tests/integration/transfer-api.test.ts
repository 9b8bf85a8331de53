import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auth, startHarness, transferBody, type Harness } from '../support/harness.js';

describe('POST /v1/transfers (in memory)', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => h.close());

  it('when an agent presses the transfer key, returns 202 and the call is placed with the citizen number', async () => {
    const body = transferBody();
    const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: body });
    expect(res.statusCode).toBe(202);
    const { transfer } = res.json();
    expect(transfer.callerId).toBe('138****8000');
    const placed = h.callControl.commands.find((c) => c.type === 'placeCall');
    expect(placed?.type === 'placeCall' && placed.request.callerId).toEqual({ kind: 'number', national: '13800138000', type: 'mobile' });
    await expect.poll(async () => (await h.service.get(transfer.id)).state).toBe('completed'.length ? 'bridged' : '');
  });
});
