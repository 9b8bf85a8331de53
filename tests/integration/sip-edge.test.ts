// The SIP edge (real drachtio-srf inside DrachtioCallControl) against the drachtio test peer, which
// speaks the wire protocol and plays the SIP parties from the recorded transcripts.
import { afterEach, describe, expect, it } from 'vitest';
import { serviceLegId, ticketIdFromUserToUser } from '../../src/adapters/sip/sip-policy.js';
import { AppError } from '../../src/errors.js';
import { startHarness, type Harness } from '../support/sip-edge-harness.js';

let h: Harness | null = null;
afterEach(async () => {
  await h?.stop();
  h = null;
});

function header(text: string, name: string): string | undefined {
  const m = new RegExp(`^${name}: (.*)\\r$`, 'im').exec(text);
  return m?.[1];
}
function harness(): Harness {
  if (!h) throw new Error('no harness');
  return h;
}
async function connectedCall(options: Parameters<Harness['peer']['citizenInvite']>[0] = {}) {
  const t = harness();
  const call = t.peer.citizenInvite(options);
  expect(await call.final()).toBe(200);
  await t.untilState(0, 'bridged', 2000);
  return call;
}

describe('connection', () => {
  it('authenticates with the secret and asks for INVITEs, as the recorded handshake', async () => {
    h = await startHarness();
    const fromApp = h.peer.frames.filter((f) => f.dir === 'in').map((f) => f.body);
    expect(fromApp[0]).toMatch(/^[0-9a-f-]{36}\|authenticate\|cymru\|$/);
    expect(fromApp.some((b) => /^[0-9a-f-]{36}\|route\|invite$/.test(b))).toBe(true);
    expect(h.edge.status()).toMatchObject({ state: 'connected', kind: 'drachtio', switchId: 'sip-edge' });
  });

  it('reconnects after the server drops the link and reports each state', async () => {
    h = await startHarness();
    const states: string[] = [];
    h.edge.onStatus((s) => states.push(s.state));
    h.peer.dropConnection();
    await h.peer.connected(2, 5000);
    await h.peer.until(() => harness().edge.status().state === 'connected', 2000, 'reconnected');
    expect(states).toContain('disconnected');
    expect(states.at(-1)).toBe('connected');
    // Routes are asked for again on the new link.
    const routes = h.peer.frames.filter((f) => f.dir === 'in' && /\|route\|invite$/.test(f.body));
    expect(routes.length).toBe(2);
  });
});

describe('connection liveness', () => {
  it('notices a half-open link by its silence to pings, drops it and reconnects', async () => {
    h = await startHarness();
    const states: string[] = [];
    h.edge.onStatus((s) => states.push(`${s.state}${s.detail === 'no pong' ? ':no pong' : ''}`));
    h.peer.goSilent();
    await h.peer.until(() => states.includes('disconnected:no pong'), 9000, 'half-open link noticed');
    expect(h.peer.frames.some((f) => f.dir === 'in' && /\|ping$/.test(f.body))).toBe(true);
    expect(await h.edge.healthCheck().check()).toMatchObject({ healthy: false });
    h.peer.goSilent(false);
    await h.peer.connected(2, 5000);
    await h.peer.until(() => harness().edge.status().state === 'connected', 2000, 'reconnected');
    expect(await h.edge.healthCheck().check()).toMatchObject({ healthy: true });
  }, 15_000);

  it('reports auth-failed when the secret is wrong', async () => {
    const { DrachtioPeer } = await import('../support/drachtio-peer.js');
    const { DrachtioCallControl } = await import('../../src/adapters/sip/drachtio-call-control.js');
    const { edgeConfig } = await import('../support/sip-edge-harness.js');
    const pino = (await import('pino')).default;
    const peer = await new DrachtioPeer({ secret: 'right' }).start();
    const edge = new DrachtioCallControl({ config: edgeConfig(peer.port), ids: { uuid: () => 'x' }, logger: pino({ level: 'silent' }) });
    edge.start();
    try {
      await peer.until(() => edge.status().state === 'auth-failed', 3000, 'auth-failed');
      expect((await edge.healthCheck().check()).healthy).toBe(false);
    } finally {
      await edge.close();
      await peer.stop();
    }
  });
});

describe('trunk B2BUA (12345 PBX → 110)', () => {
  it('re-originates a trusted INVITE to 110 with the citizen number and the ticket, relays 180/200, ends on BYE', async () => {
    h = await startHarness();
    const call = await connectedCall();
    const invite = h.peer.sentByApp({ method: 'INVITE', port: 5090 })[0] ?? '';
    expect(invite.startsWith('INVITE sip:110@127.0.0.1:5090 SIP/2.0\r\n')).toBe(true);
    expect(header(invite, 'From')).toMatch(/^<sip:13800138000@127\.0\.0\.1:5070>;tag=\w+$/);
    expect(header(invite, 'P-Asserted-Identity')).toBe('<sip:13800138000@hotline.example>');
    expect(header(invite, 'Diversion')).toBe('<sip:12345@hotline.example>;reason=deflection;counter=1');
    const ticketId = header(invite, 'X-Ticket-Id') ?? '';
    expect(ticketId).toMatch(/^SIP-[0-9a-f-]{36}$/);
    // drachtio-server re-capitalises the custom header name; the value is the hex of the id only.
    expect(ticketIdFromUserToUser(header(invite, 'User-To-User') ?? '')).toBe(ticketId);
    expect(header(invite, 'Call-Info')).toBe(`<https://hotline.invalid/v1/tickets/${ticketId}>;purpose=info`);
    expect(header(invite, 'Priority')).toBe('emergency');
    expect(header(invite, 'Subject')).toBe('12345 hotline call');
    expect(header(invite, 'Max-Forwards')).toBe('69');
    expect(invite).toContain('m=audio 6200 RTP/AVP 0 8');
    // The caller got 110's ringing and answer with its SDP and X-Agent-Id.
    expect(call.statuses).toEqual([100, 180, 200]);
    const ok = h.peer.sentByApp({ status: 200, port: 5080 })[0] ?? '';
    expect(ok).toContain('m=audio 6100 RTP/AVP 0');
    expect(header(ok, 'X-Agent-Id')).toBe('desk-7');
    // One record: the same transfer shape as over HTTP, the ticket stored from the INVITE.
    const req = h.requests[0];
    expect(req?.input).toMatchObject({
      from: '12345',
      to: '110',
      mode: 'blind',
      priority: 'emergency',
      callerNumber: '13800138000',
      citizenLeg: { switchId: 'sip-edge' },
      ticket: { ticketId, summary: '12345 hotline call', urgency: 'emergency', divisionCode: '450300' },
    });
    expect(req?.principal).toBe('sip-peer:pbx12345');

    call.bye();
    await h.peer.until(() => harness().peer.sentByApp({ method: 'BYE', port: 5090 }).length === 1, 2000, 'BYE to 110');
    await h.untilState(0, 'completed', 2000);
    expect((await h.transfer(0)).endedBy).toBe('citizen');
    expect(h.edge.liveCount()).toBe(0);
  });

  it('works the other way too: the 110 switch moves a call to 12345 with an incident ticket', async () => {
    h = await startHarness();
    const call = h.peer.citizenInvite({ address: '10.0.0.110', dialled: '12345' });
    expect(await call.final()).toBe(200);
    const invite = h.peer.sentByApp({ method: 'INVITE', port: 5080 })[0] ?? '';
    expect(invite.startsWith('INVITE sip:12345@127.0.0.1:5080 SIP/2.0\r\n')).toBe(true);
    expect(header(invite, 'P-Asserted-Identity')).toBe('<sip:13800138000@hotline.example>');
    expect(header(invite, 'Diversion')).toBe('<sip:110@hotline.example>;reason=deflection;counter=1');
    expect(h.requests[0]?.input).toMatchObject({ from: '110', to: '12345', ticket: { kind: 'incident', categoryCode: 'P01' } });
  });

  it('refuses a three-way placeCall before dialling: drachtio has no conference bridge', async () => {
    h = await startHarness();
    h.peer.party(5090, 'ring-only');
    const call = h.peer.citizenInvite();
    await h.peer.until(() => call.statuses.includes(180), 2000, 'ringing');
    // The citizen's leg as the service knows it: the dialog in the service's leg-id alphabet.
    const citizenLegId = h.requests[0]?.input.citizenLeg.legId ?? '';
    expect(citizenLegId).toBe(serviceLegId(call.dialogId));
    await expect(
      h.edge.placeCall({
        transferId: 'tr-x',
        legId: 'leg-x',
        citizenLegId,
        agentLegId: null,
        mode: 'three-way',
        priority: 'normal',
        sourceDesk: '12345',
        target: { desk: '110', number: '110', trunk: '110-main' },
        callerId: { kind: 'withheld' },
        ticket: { ticketId: 'T', stubUrl: 'https://x/T' },
        answerTimeoutSeconds: 5,
      }),
    ).rejects.toMatchObject({ code: 'NOT_SUPPORTED' });
    await expect(h.edge.joinConference()).rejects.toMatchObject({ code: 'NOT_SUPPORTED' });
    expect(h.peer.outboundInvites).toHaveLength(1);
  });

  it('passes a hold re-INVITE from the citizen on to 110 and answers with 110\'s SDP', async () => {
    h = await startHarness();
    const call = await connectedCall();
    const hold = 'v=0\r\no=citizen 53655765 2353687638 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6200 RTP/AVP 0\r\na=sendonly\r\n';
    call.reinvite(hold);
    await h.peer.until(() => harness().peer.reinviteStatuses.size === 1, 2000, 'answer to the re-INVITE');
    expect([...h.peer.reinviteStatuses.values()]).toEqual([200]);
    const toward110 = h.peer.sentByApp({ method: 'INVITE', port: 5090 })[1] ?? '';
    expect(toward110).toContain('a=sendonly');
    const answer = h.peer.sentByApp({ status: 200, port: 5080 }).at(-1) ?? '';
    expect(answer).toContain('CSeq: 2 INVITE');
    expect(answer.slice(answer.indexOf('\r\n\r\n') + 4)).toBe(
      (h.peer.sip.filter((r) => r.by === 'network' && r.partyPort === 5090 && r.text.includes(' INVITE\r\n') && r.text.startsWith('SIP/2.0 200')).at(-1)?.text ?? '').split('\r\n\r\n')[1],
    );
  });

  it('writes History-Info instead of Diversion when configured', async () => {
    h = await startHarness({ config: { diversionStyle: 'history-info' } });
    await connectedCall();
    const invite = h.peer.sentByApp({ method: 'INVITE', port: 5090 })[0] ?? '';
    expect(header(invite, 'Diversion')).toBeUndefined();
    expect(header(invite, 'History-Info')).toBe('<sip:12345@hotline.example>;index=1,<sip:110@127.0.0.1;cause=302>;index=1.1;mp=1');
  });

  it('moves to the backup trunk when 110 is busy, and the caller never sees the 486', async () => {
    h = await startHarness();
    h.peer.party(5090, 'busy').party(5092, 'answer');
    const call = h.peer.citizenInvite();
    expect(await call.final()).toBe(200);
    expect(h.peer.sentByApp({ method: 'INVITE', port: 5090 })).toHaveLength(1);
    expect(h.peer.sentByApp({ method: 'INVITE', port: 5092 })).toHaveLength(1);
    expect(call.statuses).not.toContain(486);
    await h.untilState(0, 'bridged', 2000);
    expect((await h.transfer(0)).trunkIndex).toBe(1);
    // srf's ACK for the 486 is refused by the server (it ACKs non-2xx itself), harmlessly.
    expect(h.peer.frames.some((f) => f.dir === 'out' && f.body.includes('NOK|Server error: ACK for non-success'))).toBe(true);
  });

  it('tells the PBX 486 when every trunk is busy, and the transfer fails as busy', async () => {
    h = await startHarness();
    h.peer.party(5090, 'busy').party(5092, 'busy');
    const call = h.peer.citizenInvite();
    expect(await call.final()).toBe(486);
    await h.untilState(0, 'failed', 2000);
    expect((await h.transfer(0)).failure?.reason).toBe('busy');
  });

  it('maps 503 from the trunk to trunk-down and 480 to unreachable, both trying the next trunk', async () => {
    h = await startHarness();
    h.peer.party(5090, 'trunk-down').party(5092, 'unavailable');
    const call = h.peer.citizenInvite();
    expect(await call.final()).toBe(480);
    await h.untilState(0, 'failed', 2000);
    expect((await h.trail(0)).filter((r) => r.event === 'target-failed').map((r) => r.to)).toEqual(['dialing', 'failed']);
    expect((await h.transfer(0)).failure?.reason).toBe('unreachable');
  });

  it('cancels a target that does not answer in time and tries the backup', async () => {
    h = await startHarness({ answerTimeoutSeconds: 1 });
    h.peer.party(5090, 'silent').party(5092, 'answer');
    const call = h.peer.citizenInvite();
    expect(await call.final(4000)).toBe(200);
    expect(h.peer.sentByApp({ method: 'CANCEL', port: 5090 })).toHaveLength(1);
    expect((await h.trail(0)).find((r) => r.event === 'target-failed')).toMatchObject({ to: 'dialing' });
  });

  it('cancels the B leg even when the caller\'s CANCEL comes before the INVITE to 110 is on the wire', async () => {
    h = await startHarness();
    h.peer.party(5090, 'ring-only');
    h.peer.inviteEchoDelayMs = 100;
    const call = h.peer.citizenInvite();
    await h.peer.until(() => harness().peer.outboundInvites.length === 1, 2000, 'INVITE to 110 sent by the app');
    call.cancel();
    await h.peer.until(() => harness().peer.sentByApp({ method: 'CANCEL', port: 5090 }).length === 1, 2000, 'CANCEL to 110');
    await h.untilState(0, 'failed', 2000);
    await new Promise((r) => setTimeout(r, 100));
    expect(h.peer.sentByApp({ method: 'CANCEL', port: 5090 })).toHaveLength(1);
    expect(call.statuses).toEqual([100, 487]);
    expect(h.edge.liveCount()).toBe(0);
  });

  it('releases a 200 that crosses its CANCEL after a timeout, and the caller is answered once, by the backup', async () => {
    h = await startHarness({ answerTimeoutSeconds: 1 });
    h.peer.party(5090, 'late-answer').party(5092, 'answer');
    const call = h.peer.citizenInvite();
    expect(await call.final(4000)).toBe(200);
    await h.peer.until(() => harness().peer.sentByApp({ method: 'BYE', port: 5090 }).length === 1, 2000, 'BYE to the late 110 leg');
    await h.untilState(0, 'bridged', 2000);
    expect(call.statuses.filter((s) => s === 200)).toHaveLength(1);
    expect((await h.transfer(0)).trunkIndex).toBe(1);
    // The answered call is the backup's: its SDP went to the caller.
    expect(h.peer.sentByApp({ method: 'INVITE', port: 5092 })).toHaveLength(1);
  });

  it('cancels a ringing transfer at the agent\'s request: CANCEL to 110, and the PBX is told, so its agent keeps the caller', async () => {
    h = await startHarness();
    h.peer.party(5090, 'ring-only');
    const call = h.peer.citizenInvite();
    await h.peer.until(() => call.statuses.includes(180), 2000, '180 relayed');
    const cancelled = await h.service.cancel(await h.transferId(0));
    expect(cancelled.state).toBe('cancelled');
    await h.peer.until(() => harness().peer.sentByApp({ method: 'CANCEL', port: 5090 }).length === 1, 2000, 'CANCEL to 110');
    await h.peer.until(() => call.statuses.some((s) => s >= 300), 2000, 'a final answer to the PBX');
    expect(call.statuses).toEqual([100, 180, 487]);
    expect(h.peer.sentByApp({ method: 'INVITE', port: 5092 })).toHaveLength(0);
    await h.peer.until(() => harness().edge.liveCount() === 0, 2000, 'nothing left live on the edge');
  });

  it('propagates the caller\'s CANCEL to 110 and ends the transfer as citizen-left', async () => {
    h = await startHarness();
    h.peer.party(5090, 'ring-only');
    const call = h.peer.citizenInvite();
    await h.peer.until(() => call.statuses.includes(180), 2000, '180 relayed');
    call.cancel();
    await h.peer.until(() => harness().peer.sentByApp({ method: 'CANCEL', port: 5090 }).length === 1, 2000, 'CANCEL to 110');
    await h.untilState(0, 'failed', 2000);
    expect((await h.transfer(0)).failure?.reason).toBe('citizen-left');
    expect(call.statuses).toEqual([100, 180, 487]);
    // As recorded: srf's own 487 after the server's is refused, harmlessly.
    expect(h.peer.frames.some((f) => f.dir === 'out' && f.body.includes('NOK|Response not sent due to unknown transaction'))).toBe(true);
    expect(h.peer.sentByApp({ method: 'INVITE', port: 5092 })).toHaveLength(0);
  });
});

describe('trust (RFC 3325)', () => {
  it('strips an asserted identity from an untrusted peer and withholds its number', async () => {
    h = await startHarness();
    const call = h.peer.citizenInvite({
      address: '10.9.9.9',
      edit: (t) => t.replace('Max-Forwards: 70\r\n', 'Max-Forwards: 70\r\nP-Asserted-Identity: <sip:13999999999@evil.example>\r\n'),
    });
    expect(await call.final()).toBe(200);
    const invite = h.peer.sentByApp({ method: 'INVITE', port: 5090 })[0] ?? '';
    expect(header(invite, 'P-Asserted-Identity')).toBeUndefined();
    expect(invite).not.toContain('13999999999');
    expect(invite).not.toContain('13800138000');
    expect(header(invite, 'From')).toMatch(/^"Anonymous" <sip:anonymous@anonymous\.invalid>;tag=/);
    expect(header(invite, 'Privacy')).toBe('id');
    expect(h.requests[0]?.input.callerNumber).toBeNull();
  });

  it('keeps a trusted caller\'s Privacy: id: anonymous From, identity only in P-Asserted-Identity', async () => {
    h = await startHarness();
    const call = h.peer.citizenInvite({ edit: (t) => t.replace('Max-Forwards: 70\r\n', 'Max-Forwards: 70\r\nPrivacy: id\r\n') });
    expect(await call.final()).toBe(200);
    const invite = h.peer.sentByApp({ method: 'INVITE', port: 5090 })[0] ?? '';
    expect(header(invite, 'From')).toMatch(/^"Anonymous" <sip:anonymous@anonymous\.invalid>;tag=/);
    expect(header(invite, 'P-Asserted-Identity')).toBe('<sip:13800138000@hotline.example>');
    expect(header(invite, 'Privacy')).toBe('id');
  });

  it('believes a trusted peer\'s P-Asserted-Identity over its From', async () => {
    h = await startHarness();
    const call = h.peer.citizenInvite({
      edit: (t) => t.replace('Max-Forwards: 70\r\n', 'Max-Forwards: 70\r\nP-Asserted-Identity: <sip:+8613912345678@pbx.example>\r\n'),
    });
    expect(await call.final()).toBe(200);
    const invite = h.peer.sentByApp({ method: 'INVITE', port: 5090 })[0] ?? '';
    expect(header(invite, 'P-Asserted-Identity')).toBe('<sip:13912345678@hotline.example>');
    expect(h.requests[0]?.input.callerNumber).toBe('13912345678');
  });
});

describe('bad input gets the proper SIP error, never a crash', () => {
  const cases: { name: string; status: number; options: Parameters<Harness['peer']['citizenInvite']>[0] }[] = [
    { name: 'an unknown peer', status: 403, options: { address: '10.1.1.1' } },
    { name: 'a duplicate From', status: 400, options: { edit: (t) => t.replace('To: ', 'From: <sip:1@x>;tag=9\r\nTo: ') } },
    { name: 'Max-Forwards 0', status: 483, options: { edit: (t) => t.replace('Max-Forwards: 70', 'Max-Forwards: 0') } },
    { name: 'an unknown desk in the Request-URI', status: 404, options: { dialled: '999' } },
    { name: 'the peer\'s own desk', status: 403, options: { dialled: '12345' } },
    { name: 'a malformed X-Ticket-Id', status: 400, options: { edit: (t) => t.replace('Max-Forwards: 70\r\n', 'Max-Forwards: 70\r\nX-Ticket-Id: no spaces allowed\r\n') } },
    { name: 'an oversize header', status: 400, options: { edit: (t) => t.replace('User-Agent: PBX-12345-sim', `User-Agent: ${'x'.repeat(2000)}`) } },
    {
      name: 'an INVITE without SDP',
      status: 488,
      options: { edit: (t) => t.slice(0, t.indexOf('\r\n\r\n') + 4).replace(/Content-Type: [^\r]*\r\n/, '').replace(/Content-Length:\s+\d+/, 'Content-Length: 0') },
    },
  ];
  for (const c of cases) {
    it(`answers ${c.status} to ${c.name}`, async () => {
      h = await startHarness();
      const call = h.peer.citizenInvite(c.options);
      expect(await call.final()).toBe(c.status);
      const reply = h.peer.sentByApp({ status: c.status, port: c.options?.port ?? 5080 })[0] ?? '';
      expect(header(reply, 'Warning')).toMatch(/^399 hotline\.example ".+"$/);
      expect(h.requests).toHaveLength(0);
      expect(h.peer.outboundInvites).toHaveLength(0);
      // The edge is still up and takes the next call.
      const next = h.peer.citizenInvite();
      expect(await next.final()).toBe(200);
    });
  }

  it('answers 503 when the transfer service refuses (ticket store down, a normal call), and keeps no state', async () => {
    h = await startHarness();
    h.tickets.down = true;
    const call = h.peer.citizenInvite({ edit: (t) => t.replace('Priority: emergency\r\n', '') });
    expect(await call.final()).toBe(503);
    expect(header(h.peer.sentByApp({ status: 503, port: 5080 })[0] ?? '', 'Warning')).toBe('399 hotline.example "the transfer could not be started (store_unavailable)"');
    expect(h.requests[0]?.error).toMatchObject({ code: 'store_unavailable' });
    expect(h.peer.outboundInvites).toHaveLength(0);
    expect(await h.transfers.listLive()).toHaveLength(0);
    expect(h.edge.liveCount()).toBe(0);
  });

  it('still transfers an emergency call with the ticket store down: the stub is kept and retried', async () => {
    h = await startHarness();
    h.tickets.down = true;
    const call = h.peer.citizenInvite();
    expect(await call.final()).toBe(200);
    expect(await h.transfer(0)).toMatchObject({ priority: 'emergency', stubDeferred: true });
    h.tickets.down = false;
    const ticketId = h.requests[0]?.input.ticket.ticketId ?? '';
    await h.peer.until(() => harness().service.pendingWrites().stubs === 0, 2000, 'the deferred stub written');
    expect(await h.tickets.get(ticketId)).toMatchObject({ ticketId, callerNumber: '13800138000', sourceDesk: '12345' });
  });

  it('maps the service\'s refusal codes onto SIP: 482 for a call already in a transfer, 400 naming a bad field', async () => {
    h = await startHarness();
    h.failNextSubmit(new AppError('call_already_transferring', 'this call is already being transferred', { transferId: 'x' }));
    expect(await h.peer.citizenInvite().final()).toBe(482);
    h.failNextSubmit(new AppError('invalid_request', 'ticket.summary: too big', { field: 'ticket.summary' }));
    expect(await h.peer.citizenInvite().final()).toBe(400);
    expect(header(h.peer.sentByApp({ status: 400, port: 5080 })[0] ?? '', 'Warning')).toBe('399 hotline.example "the transfer service refused the request (ticket.summary)"');
    expect(h.peer.outboundInvites).toHaveLength(0);
    expect(h.edge.liveCount()).toBe(0);
  });

  it('answers OPTIONS keep-alives from a peer with 200 and from anyone else with 403', async () => {
    h = await startHarness();
    const options = (from: string) =>
      [
        'OPTIONS sip:127.0.0.1:5070 SIP/2.0',
        `Via: SIP/2.0/UDP ${from}:5080;branch=z9hG4bK-o-${from}`,
        `From: <sip:pbx@${from}>;tag=o1`,
        'To: <sip:127.0.0.1:5070>',
        `Call-ID: options-${from}`,
        'CSeq: 1 OPTIONS',
        'Max-Forwards: 70',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
    h.peer.networkRequest(options('127.0.0.1'), 5080, '', 'OPTIONS');
    await h.peer.until(() => harness().peer.sentByApp({ status: 200 }).length === 1, 2000, '200 to OPTIONS');
    h.peer.networkRequest(options('10.1.1.1'), 5080, '', 'OPTIONS', '10.1.1.1');
    await h.peer.until(() => harness().peer.sentByApp({ status: 403 }).length === 1, 2000, '403 to OPTIONS');
  });

  it('answers 481 to a REFER outside any dialog', async () => {
    h = await startHarness();
    const text = [
      'REFER sip:12345@127.0.0.1:5070 SIP/2.0',
      'Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-x-1-4',
      'From: <sip:110@127.0.0.1:5090>;tag=abc',
      'To: <sip:12345@127.0.0.1:5070>;tag=nope',
      'Call-ID: no-such-dialog@127.0.0.1',
      'CSeq: 1 REFER',
      'Max-Forwards: 70',
      'Refer-To: <sip:119@127.0.0.1:5091>',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    h.peer.networkRequest(text, 5090, 'no-such-dialog@127.0.0.1;from-tag=abc', 'REFER');
    await h.peer.until(() => harness().peer.sentByApp({ status: 481 }).length === 1, 2000, '481');
  });
});

describe('REFER from the agent\'s side (RFC 3515)', () => {
  it('accepts, reports progress by NOTIFY, dials 119 with the citizen and the ticket, re-INVITEs the citizen and releases 110', async () => {
    h = await startHarness();
    h.peer.party(5090, 'answer-no-ringing');
    const call = await connectedCall();
    const dialog110 = h.peer.dialogTo(5090);
    expect(dialog110).not.toBeNull();
    h.peer.referFromParty(dialog110 ?? '', { referTo: '<sip:119@127.0.0.1:5091>', referredBy: '<sip:110@127.0.0.1:5090>' });

    await h.peer.until(() => harness().peer.sentByApp({ method: 'BYE', port: 5090 }).length === 1, 3000, 'BYE to 110');
    await h.untilState(1, 'bridged', 2000);
    expect(h.peer.sentByApp({ status: 202, port: 5090 })).toHaveLength(1);
    const notifies = h.peer.sentByApp({ method: 'NOTIFY', port: 5090 });
    expect(notifies.map((n) => n.slice(n.indexOf('\r\n\r\n') + 4))).toEqual([
      'SIP/2.0 100 Trying\r\n',
      'SIP/2.0 180 Ringing\r\n',
      'SIP/2.0 200 OK\r\n',
    ]);
    expect(notifies.map((n) => header(n, 'Subscription-State'))).toEqual([
      'active;expires=60',
      'active;expires=60',
      'terminated;reason=noresource',
    ]);
    expect(notifies.every((n) => header(n, 'Event') === 'refer' && header(n, 'Content-Type') === 'message/sipfrag;version=2.0')).toBe(true);

    const invite119 = h.peer.sentByApp({ method: 'INVITE', port: 5091 })[0] ?? '';
    const first = h.peer.sentByApp({ method: 'INVITE', port: 5090 })[0] ?? '';
    expect(header(invite119, 'From')).toMatch(/^<sip:13800138000@127\.0\.0\.1:5070>;tag=/);
    expect(header(invite119, 'P-Asserted-Identity')).toBe('<sip:13800138000@hotline.example>');
    expect(header(invite119, 'Referred-By')).toBe('<sip:110@127.0.0.1:5090>');
    expect(header(invite119, 'X-Ticket-Id')).toBe(header(first, 'X-Ticket-Id'));
    expect(header(invite119, 'Diversion')).toBe('<sip:110@hotline.example>;reason=deflection;counter=1');
    expect(invite119).toContain('m=audio 6200 RTP/AVP 0 8');
    // The citizen now talks to 119: re-INVITEd with 119's SDP.
    const reinvite = h.peer.sentByApp({ method: 'INVITE', port: 5080 })[0] ?? '';
    expect(reinvite).toContain('o=sw119');
    expect(h.requests[1]?.input).toMatchObject({ from: '110', to: '119', agent: { agentId: 'desk-7' } });
    expect(h.requests[1]?.principal).toBe('sip-agent:desk-7');

    call.bye();
    await h.peer.until(() => harness().peer.sentByApp({ method: 'BYE', port: 5091 }).length === 1, 2000, 'BYE to 119');
    await h.untilState(1, 'completed', 2000);
    expect((await h.transfer(1)).endedBy).toBe('citizen');
    // The transfer that brought the call to 110 ended when 110 handed it on.
    expect(await h.transfer(0)).toMatchObject({ state: 'completed', endedBy: 'target' });
    expect((await h.trail(0)).at(-1)).toMatchObject({ event: 'party-left', to: 'completed', detail: 'target: REFER to 119' });
    // Nothing held after the call: no leaked dialogs, legs or timers, and no transfer left live.
    expect(h.edge.liveCount()).toBe(0);
    expect(h.service.liveCount).toBe(0);
  });

  it('goes on when the agent\'s phone hangs up right after 202, and ends cleanly when 119 hangs up', async () => {
    h = await startHarness();
    await connectedCall();
    const dialog110 = h.peer.dialogTo(5090) ?? '';
    h.peer.party(5091, 'answer');
    h.peer.referFromParty(dialog110, { referTo: '<sip:119@127.0.0.1:5091>' });
    await h.peer.until(() => harness().peer.sentByApp({ status: 202 }).length === 1, 2000, '202');
    // The agent leaves at once (some phones BYE after 202 in a blind transfer).
    h.peer.byeFromParty(dialog110);
    await h.untilState(1, 'bridged', 3000);
    expect(h.peer.sentByApp({ status: 200, port: 5090 }).some((r) => r.includes('CSeq: 2 BYE'))).toBe(true);
    expect(await h.transfer(0)).toMatchObject({ state: 'completed', endedBy: 'target' });
    expect(h.peer.sentByApp({ method: 'INVITE', port: 5080 })).toHaveLength(1);
    expect(h.peer.sentByApp({ method: 'BYE', port: 5090 })).toHaveLength(0);
    // 119 hangs up: the citizen is released and the transfer completes.
    h.peer.byeFromParty(h.peer.dialogTo(5091) ?? '');
    await h.peer.until(() => harness().peer.sentByApp({ method: 'BYE', port: 5080 }).length === 1, 2000, 'BYE to the citizen');
    await h.untilState(1, 'completed', 2000);
    expect((await h.transfer(1)).endedBy).toBe('target');
    expect(h.edge.liveCount()).toBe(0);
  });

  it('hangs up the citizen when the REFER fails after the agent already left', async () => {
    h = await startHarness();
    await connectedCall();
    h.peer.party(5091, 'busy');
    const dialog110 = h.peer.dialogTo(5090) ?? '';
    h.peer.referFromParty(dialog110, { referTo: '<sip:119@127.0.0.1:5091>' });
    await h.peer.until(() => harness().peer.sentByApp({ status: 202 }).length === 1, 2000, '202');
    h.peer.byeFromParty(dialog110);
    await h.untilState(1, 'failed', 3000);
    await h.peer.until(() => harness().peer.sentByApp({ method: 'BYE', port: 5080 }).length === 1, 2000, 'BYE to the citizen');
    expect(h.edge.liveCount()).toBe(0);
  });

  it('keeps the citizen with the agent when 119 is busy, and says so in the final NOTIFY', async () => {
    h = await startHarness();
    h.peer.party(5091, 'busy');
    await connectedCall();
    h.peer.referFromParty(h.peer.dialogTo(5090) ?? '', { referTo: '<sip:119@127.0.0.1:5091>' });
    await h.untilState(1, 'failed', 3000);
    await h.peer.until(() => harness().peer.sentByApp({ method: 'NOTIFY', port: 5090 }).length === 2, 2000, 'final NOTIFY');
    const last = h.peer.sentByApp({ method: 'NOTIFY', port: 5090 }).at(-1) ?? '';
    expect(last.endsWith('SIP/2.0 486 Busy Here\r\n')).toBe(true);
    expect(header(last, 'Subscription-State')).toBe('terminated;reason=noresource');
    expect(h.peer.sentByApp({ method: 'BYE' })).toHaveLength(0);
    expect(h.peer.sentByApp({ method: 'INVITE', port: 5080 })).toHaveLength(0);
    // Referred-By was absent: the REFER's From stands in for it.
    expect(header(h.peer.sentByApp({ method: 'INVITE', port: 5091 })[0] ?? '', 'Referred-By')).toMatch(/^<sip:110@127\.0\.0\.1:5090>$/);
    expect((await h.transfer(1)).failure?.reason).toBe('busy');
  });

  it('tells the referrer 503 when the transfer service refuses the REFER (ticket store down, a normal call); the citizen stays with the agent', async () => {
    h = await startHarness();
    const call = h.peer.citizenInvite({ edit: (t) => t.replace('Priority: emergency\r\n', '') });
    expect(await call.final()).toBe(200);
    await h.untilState(0, 'bridged', 2000);
    h.tickets.down = true;
    h.peer.referFromParty(h.peer.dialogTo(5090) ?? '', { referTo: '<sip:119@127.0.0.1:5091>' });
    await h.peer.until(() => harness().peer.sentByApp({ method: 'NOTIFY', port: 5090 }).length === 2, 2000, 'final NOTIFY');
    const last = h.peer.sentByApp({ method: 'NOTIFY', port: 5090 }).at(-1) ?? '';
    expect(last.endsWith('SIP/2.0 503 Service Unavailable\r\n')).toBe(true);
    expect(header(last, 'Subscription-State')).toBe('terminated;reason=noresource');
    expect(h.requests[1]?.error).toMatchObject({ code: 'store_unavailable' });
    expect(h.peer.sentByApp({ method: 'INVITE', port: 5091 })).toHaveLength(0);
    expect(h.peer.sentByApp({ method: 'BYE' })).toHaveLength(0);
    // 110 had handed the call on when it sent the REFER: that transfer is over, and none is live.
    expect(await h.transfer(0)).toMatchObject({ state: 'completed', endedBy: 'target' });
    expect(await h.transfers.listLive()).toHaveLength(0);
  });

  it('gives the referrer a final answer when the new desk never answers (REFER timeout)', async () => {
    h = await startHarness({ config: { limits: { maxMessageBytes: 16384, maxHeaderBytes: 1024, referTimeoutSeconds: 1 } } });
    h.peer.party(5091, 'silent');
    await connectedCall();
    h.peer.referFromParty(h.peer.dialogTo(5090) ?? '', { referTo: '<sip:119@127.0.0.1:5091>' });
    await h.untilState(1, 'failed', 3000);
    await h.peer.until(() => harness().peer.sentByApp({ method: 'NOTIFY', port: 5090 }).length === 2, 2000, 'final NOTIFY');
    const last = h.peer.sentByApp({ method: 'NOTIFY', port: 5090 }).at(-1) ?? '';
    expect(last.endsWith('SIP/2.0 480 Temporarily Unavailable\r\n')).toBe(true);
    expect(header(last, 'Subscription-State')).toBe('terminated;reason=noresource');
    expect(h.peer.sentByApp({ method: 'CANCEL', port: 5091 })).toHaveLength(1);
    expect((await h.transfer(1)).failure?.reason).toBe('no-answer');
  });

  it('chains transfers: 110 → 119, then 119 → 120, each a record of its own', async () => {
    h = await startHarness();
    const call = await connectedCall();
    h.peer.referFromParty(h.peer.dialogTo(5090) ?? '', { referTo: '<sip:119@127.0.0.1:5091>' });
    await h.untilState(1, 'bridged', 3000);
    await h.peer.until(() => harness().peer.sentByApp({ method: 'BYE', port: 5090 }).length === 1, 2000, '110 released');
    h.peer.referFromParty(h.peer.dialogTo(5091) ?? '', { referTo: '<sip:120@127.0.0.1>' });
    await h.untilState(2, 'bridged', 3000);
    await h.peer.until(() => harness().peer.sentByApp({ method: 'BYE', port: 5091 }).length === 1, 2000, '119 released');
    expect(h.requests.map((r) => `${r.input.from}->${r.input.to}`)).toEqual(['12345->110', '110->119', '119->120']);
    expect(h.requests[2]?.input.agent.agentId).toBe('fire-desk-2');
    expect(h.peer.sentByApp({ method: 'INVITE', port: 5080 })).toHaveLength(2);
    const invite120 = h.peer.sentByApp({ method: 'INVITE', port: 5094 })[0] ?? '';
    expect(header(invite120, 'Diversion')).toBe('<sip:119@hotline.example>;reason=deflection;counter=1');
    expect(header(invite120, 'X-Ticket-Id')).toBe(h.requests[0]?.input.ticket.ticketId);
    call.bye();
    await h.untilState(2, 'completed', 2000);
    expect((await h.trail(1)).at(-1)).toMatchObject({ event: 'party-left', to: 'completed', detail: 'target: REFER to 120' });
    expect(h.edge.liveCount()).toBe(0);
    expect(await h.transfers.listLive()).toHaveLength(0);
  });

  it('refuses a REFER from the citizen\'s side with 403: only the answering desk transfers', async () => {
    h = await startHarness();
    const call = await connectedCall();
    h.peer.referFromCitizen(call.dialogId, '<sip:119@127.0.0.1:5091>');
    await h.peer.until(() => harness().peer.sentByApp({ status: 403, port: 5080 }).length === 1, 2000, '403');
    expect(h.requests).toHaveLength(1);
  });

  it('answers 491 to a second REFER while one is in progress', async () => {
    h = await startHarness();
    h.peer.party(5091, 'ring-only');
    await connectedCall();
    const d = h.peer.dialogTo(5090) ?? '';
    h.peer.referFromParty(d, { referTo: '<sip:119@127.0.0.1:5091>' });
    await h.peer.until(() => harness().peer.sentByApp({ status: 202 }).length === 1, 2000, '202');
    h.peer.referFromParty(d, { referTo: '<sip:119@127.0.0.1:5091>' });
    await h.peer.until(() => harness().peer.sentByApp({ status: 491, port: 5090 }).length === 1, 2000, '491');
  });

  const refusals: { name: string; referTo: string; status: number }[] = [
    { name: 'a desk that is not allowed', referTo: '<sip:12313@127.0.0.1>', status: 403 },
    { name: 'an unknown number', referTo: '<sip:13700000000@evil.example>', status: 403 },
    { name: 'a malformed Refer-To', referTo: '<not a uri>', status: 400 },
    { name: 'Replaces naming no dialog', referTo: '<sip:119@127.0.0.1?Replaces=nope%3Bto-tag%3Da%3Bfrom-tag%3Db>', status: 481 },
  ];
  for (const r of refusals) {
    it(`refuses a REFER to ${r.name} with ${r.status}`, async () => {
      h = await startHarness();
      await connectedCall();
      h.peer.referFromParty(h.peer.dialogTo(5090) ?? '', { referTo: r.referTo });
      await h.peer.until(() => harness().peer.sentByApp({ status: r.status, port: 5090 }).length === 1, 2000, `${r.status}`);
      expect(h.requests).toHaveLength(1);
      expect(h.peer.sentByApp({ method: 'NOTIFY' })).toHaveLength(0);
    });
  }

  it('refuses attended transfer (Replaces naming a live dialog) with 501 and a reason', async () => {
    h = await startHarness();
    const call = await connectedCall();
    const [callId, fromTag] = call.dialogId.split(';from-tag=');
    const replaces = encodeURIComponent(`${callId};to-tag=x;from-tag=${fromTag}`);
    h.peer.referFromParty(h.peer.dialogTo(5090) ?? '', { referTo: `<sip:119@127.0.0.1?Replaces=${replaces}>` });
    await h.peer.until(() => harness().peer.sentByApp({ status: 501, port: 5090 }).length === 1, 2000, '501');
    expect(header(h.peer.sentByApp({ status: 501 })[0] ?? '', 'Warning')).toContain('Replaces');
  });
});

describe('reconcile', () => {
  it('reports legs it no longer holds as the citizen gone, and leaves live ones alone', async () => {
    h = await startHarness();
    await connectedCall();
    const live = await h.transfer(0);
    const events: unknown[] = [];
    h.edge.onEvent((e) => events.push(e));
    await h.edge.reconcile([
      { transferId: live.id, state: live.state, mode: 'blind', citizenLegId: live.citizenLeg.legId, agentLegId: null, targetLegId: live.targetLegId },
      { transferId: 'tr-old', state: 'ringing', mode: 'blind', citizenLegId: 'gone@x;from-tag=1', agentLegId: null, targetLegId: 'l' },
    ]);
    expect(events).toEqual([{ type: 'party-left', transferId: 'tr-old', party: 'citizen', cause: 'sip leg lost (edge restarted)' }]);
  });
});

describe('logs', () => {
  it('never carry a whole phone number', async () => {
    h = await startHarness();
    h.peer.party(5090, 'answer-no-ringing');
    const call = await connectedCall();
    h.peer.referFromParty(h.peer.dialogTo(5090) ?? '', { referTo: '<sip:119@127.0.0.1:5091>', referredBy: '<sip:13800138000@127.0.0.1>' });
    await h.untilState(1, 'bridged', 3000);
    call.bye();
    await h.untilState(1, 'completed', 2000);
    const logs = h.logLines.join('');
    expect(logs).toContain('138****8000');
    expect(logs).not.toMatch(/13800138000/);
  });
});
