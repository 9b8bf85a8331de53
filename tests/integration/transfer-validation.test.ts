// Every invalid field of a transfer request gets a 400 that names it; nothing half-made is left.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, startHarness, transferBody, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h.close());

/** Sets a dotted path in a copy of the body; undefined deletes it. */
function withField(path: string, value: unknown): Record<string, unknown> {
  const body = structuredClone(transferBody()) as Record<string, unknown>;
  const parts = path.split('.');
  let node = body;
  for (const part of parts.slice(0, -1)) node = node[part] as Record<string, unknown>;
  const last = parts.at(-1)!;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return body;
}

describe('a transfer request with a bad field', () => {
  it.each([
    ['citizenLeg', undefined],
    ['citizenLeg.legId', undefined],
    ['citizenLeg.legId', ''],
    ['citizenLeg.legId', 'abc def'],
    ['citizenLeg.legId', 'x'.repeat(200)],
    ['citizenLeg.switchId', 'fs 1'],
    ['citizenLeg.extra', 1],
    ['agent', undefined],
    ['agent.agentId', undefined],
    ['agent.agentId', 'A,1'],
    ['agent.seatId', ''],
    ['agent.legId', 42],
    ['from', undefined],
    ['from', '1'],
    ['to', 'police station'],
    ['mode', 'attended'],
    ['priority', 'urgent'],
    ['firstReceiver', '!'],
    ['callerNumber', undefined],
    ['callerNumber', '12800138000'],
    ['callerNumber', '13800138000,sip_h_X=1'],
    ['callerNumber', 13800138000],
    ['ticket', undefined],
    ['ticket.ticketId', 'GD 1'],
    ['ticket.ticketId', 'GD}1'],
    ['ticket.kind', '工单'],
    ['ticket.categoryCode', ''],
    ['ticket.divisionCode', '000000'],
    ['ticket.divisionCode', '4503001'],
    ['ticket.summary', ''],
    ['ticket.summary', '警'.repeat(1001)],
    ['ticket.location', '路'.repeat(201)],
    ['ticket.urgency', 'asap'],
    ['ticket.callerName', ''],
    ['ticket.idCard', '450300199001011234'],
    ['unexpected', true],
  ])('%s = %j is a 400 naming %s', async (field, value) => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: withField(field, value) });
    expect(res.statusCode).toBe(400);
    const { error } = res.json();
    expect(error.code).toBe('invalid_request');
    // An unknown key is reported on the object that holds it.
    const named = field.endsWith('extra') || field.endsWith('idCard') || field === 'unexpected' ? field.split('.').slice(0, -1).join('.') || 'body' : field;
    expect(error.details.field).toBe(named);
    expect(error.message).toContain(named);
  });

  it('a stub too large in total is a 400 naming the ticket', async () => {
    const body = transferBody();
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/transfers',
      headers: auth('agent'),
      payload: { ...body, ticket: { ...body.ticket, summary: '警'.repeat(1000), location: '路'.repeat(200), callerName: '名'.repeat(64) } },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details.field).toBe('ticket');
  });

  it.each([
    ['{"citizenLeg":', 'application/json', 400, 'invalid_request'],
    ['', 'application/json', 400, 'invalid_request'],
    ['[]', 'application/json', 400, 'invalid_request'],
    ['null', 'application/json', 400, 'invalid_request'],
    ['citizen=1', 'application/x-www-form-urlencoded', 415, 'unsupported_media_type'],
  ])('body %j as %s is %i %s', async (payload, contentType, status, code) => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/transfers',
      headers: { ...auth('agent'), 'content-type': contentType },
      payload,
    });
    expect(res.statusCode).toBe(status);
    expect(res.json().error.code).toBe(code);
  });

  it('a body over the limit is 413', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/transfers',
      headers: { ...auth('agent'), 'content-type': 'application/json' },
      payload: JSON.stringify({ pad: 'x'.repeat(70_000) }),
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('payload_too_large');
  });

  it.each([
    ['to', '999', 'unknown_desk'],
    ['to', '12345', 'same_desk'],
    ['citizenLeg.switchId', 'fs-nowhere', 'unknown_switch'],
  ])('%s = %s is a 400 %s', async (field, value, code) => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: withField(field, value) });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code, details: { field } });
  });

  it('an Idempotency-Key with spaces or over 128 characters is a 400', async () => {
    for (const key of ['two words', 'k'.repeat(129)]) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/transfers',
        headers: { ...auth('agent'), 'idempotency-key': key },
        payload: transferBody(),
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.details.field).toBe('headers.idempotency-key');
    }
  });

  it('left nothing behind: no transfer was placed and no stub stored', async () => {
    expect(h.callControl.commands).toEqual([]);
    expect(await h.transfers.listLive()).toEqual([]);
  });

  it('a transfer id that is not a UUID is a 400, an unknown one a 404', async () => {
    const bad = await h.app.inject({ method: 'GET', url: '/v1/transfers/123', headers: auth('supervisor') });
    expect(bad.statusCode).toBe(400);
    const unknown = await h.app.inject({ method: 'GET', url: '/v1/transfers/2b0f8f4e-5d7c-4d0e-9a54-0a9f7c1d2e3f', headers: auth('supervisor') });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('transfer_not_found');
  });
});
