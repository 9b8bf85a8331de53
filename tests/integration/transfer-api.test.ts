// The transfer key through the HTTP API, against a real redis-server and the CallControl test peer.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { auth, KEYS, startHarness, transferBody, type Harness } from '../support/harness.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => redis.stop());

describe('the transfer key, on Redis', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness({ redisUrl: redis.url });
  });
  afterEach(async () => h.close());

  const press = (body = transferBody(), headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: '/v1/transfers', headers: { ...auth('agent'), ...headers }, payload: body });

  it('stores the ticket stub before the call is placed, so the receiving seat can read it as the phone rings', async () => {
    const body = transferBody();
    const seenBySwitch: { status: number; callerNumber?: string }[] = [];
    h.callControl.onPlaceCall = async (request) => {
      const res = await h.app.inject({ method: 'GET', url: `/v1/tickets/${request.ticket.ticketId}`, headers: auth('seat') });
      seenBySwitch.push({ status: res.statusCode, callerNumber: res.json().callerNumber });
    };
    const res = await press(body);
    expect(res.statusCode).toBe(202);
    expect(seenBySwitch).toEqual([{ status: 200, callerNumber: '13800138000' }]);
  });

  it('answers with the outcome when the switch refuses the call on every trunk, and hands the citizen back to the agent', async () => {
    h.callControl.placeCallError = Object.assign(new Error('gateway sw110 is down'), { failure: 'trunk-down' as const });
    const res = await press();
    expect(res.statusCode).toBe(202);
    const { id, state, failure } = res.json().transfer as { id: string; state: string; failure: { reason: string } | null };
    expect({ state, reason: failure?.reason }).toEqual({ state: 'failed', reason: 'trunk-down' });
    const commands = h.callControl.commandsFor(id);
    expect(commands.filter((c) => c.type === 'placeCall').map((c) => c.type === 'placeCall' && c.request.target.trunk)).toEqual([
      'sw110',
      'sw110-backup',
    ]);
    expect(commands.at(-1)).toMatchObject({ type: 'returnToAgent' });
  });

  it('has stored the leg it dials before the call is placed, so an instance taking over knows what to ask the switch', async () => {
    const seenBySwitch: { state?: string; targetLegId?: string | null; placedLeg: string }[] = [];
    h.callControl.onPlaceCall = async (request) => {
      const stored = await h.transfers.get(request.transferId); // Redis itself, not the instance's memory
      seenBySwitch.push({ state: stored?.state, targetLegId: stored?.targetLegId, placedLeg: request.legId });
    };
    expect((await press()).statusCode).toBe(202);
    expect(seenBySwitch).toHaveLength(1);
    expect(seenBySwitch[0]).toEqual({ state: 'dialing', targetLegId: seenBySwitch[0]!.placedLeg, placedLeg: seenBySwitch[0]!.placedLeg });
  });

  it('places the call with the citizen number, the ticket reference and the first trunk, then bridges and releases the agent', async () => {
    const body = transferBody();
    const res = await press(body);
    expect(res.statusCode).toBe(202);
    const id = res.json().transfer.id as string;
    const placed = h.callControl.commandsFor(id).find((c) => c.type === 'placeCall');
    expect(placed?.type === 'placeCall' && placed.request).toMatchObject({
      citizenLegId: body.citizenLeg.legId,
      callerId: { kind: 'number', national: '13800138000', type: 'mobile' },
      target: { desk: '110', number: '110', trunk: 'sw110' },
      sourceDesk: '12345',
      ticket: { ticketId: body.ticket.ticketId, stubUrl: `http://127.0.0.1:8080/v1/tickets/${body.ticket.ticketId}` },
    });
    await expect.poll(() => h.callControl.commandsFor(id).map((c) => c.type)).toEqual(['placeCall', 'bridgeToTarget', 'releaseAgent']);
    const got = await h.app.inject({ method: 'GET', url: `/v1/transfers/${id}`, headers: auth('supervisor') });
    expect(got.json()).toMatchObject({ state: 'bridged', callerId: '138****8000', direction: { from: '12345', to: '110' } });
    const audit = await h.app.inject({ method: 'GET', url: `/v1/transfers/${id}/audit`, headers: auth('agent') });
    expect(audit.json().transitions.map((r: { event: string; to: string }) => `${r.event} → ${r.to}`)).toEqual([
      'created → requested',
      'stub-stored → stub-stored',
      'dial-started → dialing',
      'target-ringing → ringing',
      'target-answered → answered',
      'bridged → bridged',
      'party-left → bridged', // the agent's leg, released
    ]);
  });

  it('opens a three-way call as a conference', async () => {
    const res = await press(transferBody({ mode: 'three-way' }));
    const id = res.json().transfer.id as string;
    await expect.poll(async () => (await h.service.get(id)).state).toBe('conferenced');
    expect(h.callControl.commandsFor(id).map((c) => c.type)).toEqual(['placeCall', 'joinConference']);
  });

  it('moves to the backup trunk when 110 is busy, and hands the call back to the agent when every trunk fails', async () => {
    h.callControl.answers.set('sw110', { fail: 'busy', cause: 'USER_BUSY' });
    const fallback = (await press()).json().transfer.id as string;
    await expect.poll(async () => (await h.service.get(fallback)).state).toBe('bridged');
    const trunks = h.callControl.commandsFor(fallback).flatMap((c) => (c.type === 'placeCall' ? [c.request.target.trunk] : []));
    expect(trunks).toEqual(['sw110', 'sw110-backup']);

    h.callControl.answers.set('sw110-backup', { fail: 'trunk-down', cause: 'GATEWAY_DOWN' });
    const failed = (await press()).json().transfer.id as string;
    await expect.poll(async () => (await h.service.get(failed)).state).toBe('failed');
    expect(await h.service.get(failed)).toMatchObject({ failure: { reason: 'trunk-down', cause: 'GATEWAY_DOWN' } });
    // The state is stored before its effects run: wait for the command itself.
    await expect.poll(() => h.callControl.commandsFor(failed).at(-1)).toMatchObject({ type: 'returnToAgent', reason: 'trunk-down' });
  });

  it('a double press with one Idempotency-Key, at the same instant, is one transfer', async () => {
    const body = transferBody();
    const key = randomUUID();
    const replies = await Promise.all(Array.from({ length: 8 }, () => press(body, { 'idempotency-key': key })));
    expect(replies.map((r) => r.statusCode)).toEqual(Array(8).fill(202));
    const ids = new Set(replies.map((r) => r.json().transfer.id));
    expect(ids.size).toBe(1);
    expect(replies.filter((r) => r.json().replay === false)).toHaveLength(1);
    expect(h.callControl.commands.filter((c) => c.type === 'placeCall')).toHaveLength(1);
  });

  it('presses arriving at two service instances at the same instant are one transfer, placed once', async () => {
    const other = await startHarness({ redisUrl: redis.url, namespace: h.namespace ?? undefined });
    try {
      for (let round = 0; round < 20; round += 1) {
        const body = transferBody();
        const key = randomUUID();
        const [a, b] = await Promise.all([
          press(body, { 'idempotency-key': key }),
          other.app.inject({ method: 'POST', url: '/v1/transfers', headers: { ...auth('agent'), 'idempotency-key': key }, payload: body }),
        ]);
        expect([a.statusCode, b.statusCode]).toEqual([202, 202]);
        expect(a.json().transfer.id).toBe(b.json().transfer.id);
      }
      const placed = [...h.callControl.commands, ...other.callControl.commands].flatMap((c) =>
        c.type === 'placeCall' ? [c.request.transferId] : [],
      );
      expect(placed).toHaveLength(20);
      expect(new Set(placed).size).toBe(20);
    } finally {
      await other.close();
    }
  });

  it('refuses with 409 a second transfer of a call already being transferred', async () => {
    h.callControl.answers.set('sw110', 'ring-only');
    const body = transferBody();
    const first = await press(body);
    const second = await press({ ...body, to: '119' });
    expect(second.statusCode).toBe(409);
    expect(second.json().error).toMatchObject({ code: 'call_already_transferring', details: { transferId: first.json().transfer.id } });
  });

  it('refuses with 422 an Idempotency-Key reused for another request', async () => {
    const key = randomUUID();
    await press(transferBody(), { 'idempotency-key': key });
    const res = await press(transferBody(), { 'idempotency-key': key });
    expect(res.statusCode).toBe(422);
    expect(res.json().error.code).toBe('idempotency_key_reused');
  });

  it('cancels a transfer while it rings, hanging up that leg and handing the call back', async () => {
    h.callControl.answers.set('sw110', 'ring-only');
    const id = (await press()).json().transfer.id as string;
    await expect.poll(async () => (await h.service.get(id)).state).toBe('ringing');
    const res = await h.app.inject({ method: 'DELETE', url: `/v1/transfers/${id}`, headers: auth('agent') });
    expect(res.statusCode).toBe(200);
    expect(res.json().state).toBe('cancelled');
    expect(h.callControl.commandsFor(id).slice(-2).map((c) => c.type)).toEqual(['hangUp', 'returnToAgent']);
    const again = await h.app.inject({ method: 'DELETE', url: `/v1/transfers/${id}`, headers: auth('agent') });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('cannot_cancel');
  });

  it('gives up on a leg the switch never reports on, after the answer timeout', async () => {
    const quick = await startHarness({ redisUrl: redis.url, answerTimeoutSeconds: 1 });
    try {
      quick.callControl.answers.set('sw110', 'ring-only');
      quick.callControl.answers.set('sw110-backup', 'ring-only');
      const res = await quick.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody() });
      const id = res.json().transfer.id as string;
      // 1 s answer timeout + 0.2 s grace per trunk, two trunks.
      await expect.poll(async () => (await quick.service.get(id)).state, { timeout: 5000, interval: 100 }).toBe('failed');
      expect(await quick.service.get(id)).toMatchObject({ failure: { reason: 'no-answer', cause: 'SERVICE_ANSWER_TIMEOUT' } });
    } finally {
      await quick.close();
    }
  });

  it('never writes the citizen number whole into a log line', async () => {
    const id = (await press(transferBody({ callerNumber: '+86 139 0013 9000' }))).json().transfer.id as string;
    await expect.poll(async () => (await h.service.get(id)).state).toBe('bridged');
    await h.app.inject({ method: 'GET', url: `/v1/tickets/${(await h.service.get(id)).ticketId}`, headers: auth('seat') });
    expect(h.rawLogs.length).toBeGreaterThan(5);
    expect(h.rawLogs.join('\n')).not.toMatch(/13900139000/);
    expect(h.rawLogs.join('\n')).toMatch(/139\*\*\*\*9000/);
  });
});

describe('authentication and roles', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h.close());

  it.each([
    ['POST', '/v1/transfers', undefined, 401],
    ['POST', '/v1/transfers', 'seat', 403],
    ['POST', '/v1/transfers', 'supervisor', 403],
    ['GET', `/v1/transfers/${randomUUID()}`, undefined, 401],
    ['GET', `/v1/transfers/${randomUUID()}`, 'seat', 403],
    ['GET', '/v1/tickets/GD-1', 'agent', 403],
    ['GET', '/v1/tickets/GD-1', undefined, 401],
    ['DELETE', `/v1/transfers/${randomUUID()}`, 'seat', 403],
  ] as const)('%s %s as %s is %i', async (method, url, role, status) => {
    const res = await h.app.inject({ method, url, headers: role ? auth(role) : {}, payload: method === 'POST' ? transferBody() : undefined });
    expect(res.statusCode).toBe(status);
    expect(res.json().error.code).toBe(status === 401 ? 'unauthorized' : 'forbidden');
  });

  it('refuses an unknown key', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/tickets/GD-1', headers: { authorization: 'Bearer not-a-key-at-all-000' } });
    expect(res.statusCode).toBe(401);
  });

  it('accepts the key in X-Api-Key too', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/tickets/GD-none', headers: { 'x-api-key': 'test-seat-key-0123456789' } });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('ticket_not_found');
  });

  it('leaves the health endpoints open', async () => {
    expect((await h.app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    const ready = await h.app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json().switches).toEqual([{ switchId: 'test-switch', kind: 'test-peer', desk: '12345', state: 'connected' }]);
  });

  it('serves the OpenAPI description at /docs to any role with a key', async () => {
    for (const role of ['agent', 'seat', 'supervisor', 'pbx'] as const) {
      const res = await h.app.inject({ method: 'GET', url: '/docs/json', headers: auth(role) });
      expect(res.statusCode).toBe(200);
      expect(Object.keys(res.json().paths)).toEqual(expect.arrayContaining(['/v1/transfers', '/v1/transfers/{id}', '/v1/tickets/{id}']));
    }
  });

  it('keeps /docs closed without a key, with a Basic challenge a browser answers with the key as password', async () => {
    for (const url of ['/docs', '/docs/json', '/docs/yaml', '/docs/static/index.html']) {
      const res = await h.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(401);
      expect(res.headers['www-authenticate'], url).toBe('Basic realm="API description", charset="UTF-8"');
      expect(res.json().error.code).toBe('unauthorized');
      expect(res.body).not.toContain('/v1/transfers');
    }
    const basic = (user: string, password: string) => ({
      authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
    });
    const page = await h.app.inject({ method: 'GET', url: '/docs', headers: basic('王芳', KEYS.seat) });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect((await h.app.inject({ method: 'GET', url: '/docs/json', headers: basic('', KEYS.agent) })).statusCode).toBe(200);

    const wrong = await h.app.inject({ method: 'GET', url: '/docs/json', headers: basic('x', 'not-a-key-at-all-0000') });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.message).toBe('unknown API key');
    // A name with no password is no key.
    expect((await h.app.inject({ method: 'GET', url: '/docs/json', headers: basic(KEYS.agent, '') })).statusCode).toBe(401);
  });

  it('takes the key as a Basic password on the API too, and refuses a Basic key of the wrong role', async () => {
    const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`toolbar:${password}`).toString('base64')}` });
    const made = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: basic(KEYS.agent), payload: transferBody() });
    expect(made.statusCode).toBe(202);
    const refused = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: basic(KEYS.seat), payload: transferBody() });
    expect(refused.statusCode).toBe(403);
  });
});

describe('with no switch connected', () => {
  it('refuses a transfer with 503 switch_unavailable rather than pretending', async () => {
    const h = await startHarness({ withSwitch: false });
    try {
      const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody() });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('switch_unavailable');
      expect((await h.app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(503);
    } finally {
      await h.close();
    }
  });

  it('refuses with 503 while the only switch is disconnected, and takes transfers again when it is back', async () => {
    const h = await startHarness();
    try {
      h.callControl.setState('disconnected');
      const down = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody() });
      expect(down.json().error.code).toBe('switch_unavailable');
      h.callControl.setState('connected');
      const up = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: transferBody() });
      expect(up.statusCode).toBe(202);
    } finally {
      await h.close();
    }
  });
});

describe('trunks from the switch (CallControl.trunksFor)', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => h.close());

  const press = (body = transferBody()) => h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: body });

  it("dials the switch's own trunks for a desk, in order, instead of the directory's", async () => {
    h.callControl.trunks = { '110': ['edge-110-a', 'edge-110-b'] };
    h.callControl.answers.set('edge-110-a', { fail: 'busy', cause: 'USER_BUSY' });
    const res = await press();
    expect(res.statusCode).toBe(202);
    const id = res.json().transfer.id as string;
    await expect.poll(async () => (await h.service.get(id)).state).toBe('bridged');
    expect((await h.service.get(id)).target).toEqual({ desk: '110', number: '110', trunks: ['edge-110-a', 'edge-110-b'] });
    const trunks = h.callControl.commandsFor(id).flatMap((c) => (c.type === 'placeCall' ? [c.request.target.trunk] : []));
    expect(trunks).toEqual(['edge-110-a', 'edge-110-b']);
  });

  it("uses the directory's trunks for a desk the switch does not name", async () => {
    h.callControl.trunks = { '119': ['edge-119'] };
    const id = (await press()).json().transfer.id as string;
    expect((await h.service.get(id)).target.trunks).toEqual(['sw110', 'sw110-backup']);
    const placed = h.callControl.commandsFor(id).find((c) => c.type === 'placeCall');
    expect(placed?.type === 'placeCall' && placed.request.target.trunk).toBe('sw110');
  });

  it('refuses with 400 unknown_desk, naming `to`, when the switch reaches the desk through no trunk; nothing is stored or placed', async () => {
    h.callControl.trunks = { '110': [] };
    const body = transferBody();
    const res = await press(body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'unknown_desk', details: { field: 'to' } });
    expect(h.callControl.commands).toHaveLength(0);
    expect(await h.tickets.get(body.ticket.ticketId)).toBeNull();
    expect(await h.transfers.listLive()).toHaveLength(0);
  });
});

describe('a call handed on by the desk that has it', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => h.close());

  const press = (body = transferBody()) => h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: body });

  it('is still one transfer at a time: a bridged call is not transferred again while its transfer lives', async () => {
    const body = transferBody();
    const first = (await press(body)).json().transfer.id as string;
    await expect.poll(async () => (await h.service.get(first)).state).toBe('bridged');
    const again = await press(transferBody({ citizenLeg: body.citizenLeg, from: '110', to: '119' }));
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toMatchObject({ code: 'call_already_transferring', details: { transferId: first } });
  });

  it('applies the switch report that ended the earlier transfer before creating the next one, even with a slow store', async () => {
    const body = transferBody();
    const first = (await press(body)).json().transfer.id as string;
    await expect.poll(async () => (await h.service.get(first)).state).toBe('bridged');
    const save = h.transfers.save.bind(h.transfers);
    h.transfers.save = async (steps) => {
      await new Promise((r) => setTimeout(r, 50));
      return save(steps);
    };
    // The desk that has the call hands it on (a SIP REFER): the switch reports the first transfer's
    // target gone, and asks for the next transfer at once.
    h.callControl.emit({ type: 'party-left', transferId: first, party: 'target', cause: 'REFER to 119' });
    const next = await press(transferBody({ citizenLeg: body.citizenLeg, from: '110', to: '119' }));
    expect(next.statusCode).toBe(202);
    expect(await h.service.get(first)).toMatchObject({ state: 'completed', endedBy: 'target' });
    expect((await h.transfers.auditTrail(first)).at(-1)).toMatchObject({ event: 'party-left', to: 'completed', detail: 'target: REFER to 119' });
    await expect.poll(async () => (await h.service.get(next.json().transfer.id as string)).state).toBe('bridged');
  });
});
