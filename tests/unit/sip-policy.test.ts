import { describe, expect, it } from 'vitest';
import { SipEdgeConfigSchema, findTrunk, trunkNamesFor, type SipEdgeConfig } from '../../src/adapters/sip/sip-edge-config.js';
import { validateRequest } from '../../src/adapters/sip/sip-message.js';
import {
  citizenIdentity,
  deskForNumber,
  findPeer,
  inboundTransferRequest,
  inviteTarget,
  legHeaders,
  nextMaxForwards,
  parseReplaces,
  priorityOf,
  referTarget,
  referredByOf,
  targetUri,
  ticketIdFromUserToUser,
  ticketIdOf,
  userToUser,
  wantsPrivacy,
} from '../../src/adapters/sip/sip-policy.js';
import { INVITE, withHeader } from './sip-test-data.js';

const config: SipEdgeConfig = SipEdgeConfigSchema.parse({
  drachtio: { secret: 's' },
  domain: 'hotline.example',
  peers: [
    { name: 'pbx', desk: '12345', addresses: ['10.0.0.1', '::1'], trusted: true, divisionCode: '450300', categoryCode: 'C01' },
    { name: 'remote', desk: '12345', addresses: ['10.0.0.2'], trusted: false, divisionCode: '650100', categoryCode: 'C02' },
    { name: 'sw110', desk: '110', addresses: ['10.0.0.3'], trusted: true, divisionCode: '450300', categoryCode: 'P01' },
  ],
  desks: {
    '12345': { numbers: ['12345'], trunks: [{ name: 'to-12345', host: 'pbx.example' }] },
    '110': { numbers: ['110', '0773110'], trunks: [{ name: '110-a', host: '10.1.0.1' }, { name: '110-b', host: '10.1.0.2', port: 5070, transport: 'tcp' }] },
    '119': { numbers: ['119'], trunks: [{ name: '119-a', host: '10.1.0.9', trustDomain: false }] },
    '12313': { numbers: ['12313'], trunks: [{ name: '12313-a', host: 'x.example' }], referTarget: false },
    'expert-110': { numbers: ['8110'], trunks: [] },
  },
});
const trusted = config.peers[0]!;
const untrusted = config.peers[1]!;
const parse = (raw: string) => {
  const r = validateRequest(raw, { maxMessageBytes: 16384, maxHeaderBytes: 1024 });
  if (!r.ok) throw new Error(r.rejection.warning);
  return r.request;
};

describe('SipEdgeConfigSchema', () => {
  it('fills defaults', () => {
    expect(config.drachtio).toMatchObject({ host: '127.0.0.1', port: 9022, pingIntervalMs: 15000 });
    expect(config.diversionStyle).toBe('diversion');
    expect(config.limits.referTimeoutSeconds).toBe(15);
    expect(findTrunk(config, '110-a')).toMatchObject({ port: 5060, transport: 'udp', trustDomain: true });
    expect(trunkNamesFor(config, '110')).toEqual(['110-a', '110-b']);
    expect(trunkNamesFor(config, 'nowhere')).toEqual([]);
    expect(findTrunk(config, 'nope')).toBeNull();
  });
  it('refuses a number on two desks, a trunk name twice and a peer of an unknown desk, naming the path', () => {
    const r = SipEdgeConfigSchema.safeParse({
      drachtio: { secret: 's' },
      peers: [{ name: 'p', desk: '999', addresses: ['10.0.0.1'], divisionCode: '450300', categoryCode: 'C' }],
      desks: {
        a1: { numbers: ['110'], trunks: [{ name: 't', host: 'h' }] },
        b1: { numbers: ['110'], trunks: [{ name: 't', host: 'h' }] },
      },
    });
    expect(r.success).toBe(false);
    const paths = r.error?.issues.map((i) => i.path.join('.')) ?? [];
    expect(paths).toEqual(expect.arrayContaining(['desks.b1.numbers', 'desks.b1.trunks.0.name', 'peers.0.desk']));
  });
  it('refuses a missing secret, a bad port and an unknown key', () => {
    expect(SipEdgeConfigSchema.safeParse({ drachtio: {}, desks: {} }).success).toBe(false);
    expect(SipEdgeConfigSchema.safeParse({ drachtio: { secret: 's', port: 70000 }, desks: {} }).success).toBe(false);
    expect(SipEdgeConfigSchema.safeParse({ drachtio: { secret: 's' }, desks: {}, extra: 1 }).success).toBe(false);
    expect(SipEdgeConfigSchema.safeParse({ drachtio: { secret: 's', pingIntervalMs: 1000 }, desks: {} }).success).toBe(false);
  });
});

describe('peers and trust (RFC 3325)', () => {
  it('finds a peer by source address, IPv4-mapped and bracketed IPv6 included', () => {
    expect(findPeer(config, '10.0.0.1')?.name).toBe('pbx');
    expect(findPeer(config, '::ffff:10.0.0.2')?.name).toBe('remote');
    expect(findPeer(config, '[::1]')?.name).toBe('pbx');
    expect(findPeer(config, '10.9.9.9')).toBeNull();
  });
  it('a trusted peer: P-Asserted-Identity first, normalised', () => {
    const r = citizenIdentity(parse(withHeader('P-Asserted-Identity', '<sip:+8613912345678@pbx>')), trusted);
    expect(r).toEqual({ callerId: { kind: 'number', national: '13912345678', type: 'mobile' }, source: 'pai' });
  });
  it('a trusted peer: a tel: PAI works too, and the sip one is preferred in order', () => {
    expect(citizenIdentity(parse(withHeader('P-Asserted-Identity', '<tel:+86-773-1234567>')), trusted).callerId).toMatchObject({ national: '07731234567' });
  });
  it('a trusted peer without PAI: the From number', () => {
    expect(citizenIdentity(parse(INVITE), trusted)).toMatchObject({ source: 'from', callerId: { national: '13800138000' } });
  });
  it('a trusted peer with a useless PAI falls back to From', () => {
    expect(citizenIdentity(parse(withHeader('P-Asserted-Identity', '<sip:agent-7@pbx>')), trusted).source).toBe('from');
  });
  it('a trusted peer with an anonymous From and no PAI: withheld', () => {
    expect(citizenIdentity(parse(withHeader('From', '"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1')), trusted)).toEqual({
      callerId: { kind: 'withheld' },
      source: 'none',
    });
  });
  it('an untrusted peer: withheld whatever it asserts', () => {
    const raw = withHeader('P-Asserted-Identity', '<sip:13999999999@evil>');
    expect(citizenIdentity(parse(raw), untrusted)).toEqual({ callerId: { kind: 'withheld' }, source: 'none' });
  });
});

describe('desks and targets', () => {
  it('maps numbers to desks', () => {
    expect(deskForNumber(config, '110')).toBe('110');
    expect(deskForNumber(config, '0773110')).toBe('110');
    expect(deskForNumber(config, '110;phone-context=x')).toBe('110');
    expect(deskForNumber(config, '999')).toBeNull();
    expect(deskForNumber(config, null)).toBeNull();
  });
  it('an INVITE for 110 from the 12345 PBX goes to 110', () => {
    expect(inviteTarget(config, parse(INVITE), trusted)).toEqual({ ok: true, desk: '110' });
  });
  it('an unknown number is 404, the peer\'s own desk 403, a desk without trunks 404', () => {
    const to = (user: string) => parse(INVITE.replace('INVITE sip:110@', `INVITE sip:${user}@`));
    expect(inviteTarget(config, to('999'), trusted)).toMatchObject({ ok: false, rejection: { status: 404 } });
    expect(inviteTarget(config, to('12345'), trusted)).toMatchObject({ ok: false, rejection: { status: 403 } });
    expect(inviteTarget(config, to('8110'), trusted)).toMatchObject({ ok: false, rejection: { status: 404 } });
  });
  const refer: [string, string, string | null, object][] = [
    ['an allowed desk', '<sip:119@anything.example>', '110', { kind: 'desk', desk: '119' }],
    ['an allowed desk by an alias number', 'sip:0773110@x', '12345', { kind: 'desk', desk: '110' }],
    ['a desk not open to REFER', '<sip:12313@x>', '110', { kind: 'rejected', rejection: { status: 403 } }],
    ['an unknown number', '<sip:13700000000@evil>', '110', { kind: 'rejected', rejection: { status: 403 } }],
    ['the desk that has the call', '<sip:110@x>', '110', { kind: 'rejected', rejection: { status: 403 } }],
    ['a desk without trunks', '<sip:8110@x>', '110', { kind: 'rejected', rejection: { status: 403 } }],
    ['a URI without user', '<sip:x.example>', '110', { kind: 'rejected', rejection: { status: 400 } }],
    ['garbage', 'not a uri', '110', { kind: 'rejected', rejection: { status: 400 } }],
    ['a URI header other than Replaces', '<sip:119@x?Subject=hi>', '110', { kind: 'rejected', rejection: { status: 403 } }],
    ['a malformed Replaces', '<sip:119@x?Replaces=abc>', '110', { kind: 'rejected', rejection: { status: 400 } }],
    ['a Replaces', '<sip:119@x?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2>', '110', { kind: 'replaces', desk: '119', replaces: { callId: 'abc', toTag: '1', fromTag: '2', earlyOnly: false } }],
  ];
  it.each(refer)('Refer-To %s', (_name, value, referrer, expected) => {
    expect(referTarget(config, value, referrer)).toMatchObject(expected);
  });
  it('parses Replaces (RFC 3891)', () => {
    expect(parseReplaces('a@b;from-tag=2;to-tag=1;early-only')).toEqual({ callId: 'a@b', toTag: '1', fromTag: '2', earlyOnly: true });
    expect(parseReplaces('a@b;to-tag=1')).toBeNull();
    expect(parseReplaces('')).toBeNull();
    expect(parseReplaces('a b;to-tag=1;from-tag=2')).toBeNull();
  });
  it('records a Referred-By that parses (RFC 3892)', () => {
    expect(referredByOf('<sip:110@10.0.0.3>')).toEqual({ header: '<sip:110@10.0.0.3>', user: '110' });
    expect(referredByOf('garbage <')).toBeNull();
    expect(referredByOf(undefined)).toBeNull();
  });
});

describe('the transfer request built from a trunk INVITE', () => {
  const build = (raw: string, peer = trusted) =>
    inboundTransferRequest({
      request: parse(raw),
      peer,
      targetDesk: '110',
      switchId: 'sip-edge',
      citizenLegId: 'leg-1',
      ticketId: 'T-1',
      callerId: citizenIdentity(parse(raw), peer).callerId,
    });
  it('takes summary, urgency and priority from Subject/Priority and the rest from the peer', () => {
    expect(build(INVITE)).toEqual({
      citizenLeg: { switchId: 'sip-edge', legId: 'leg-1' },
      agent: { agentId: 'pbx', seatId: 'pbx', legId: null },
      from: '12345',
      to: '110',
      mode: 'blind',
      priority: 'emergency',
      firstReceiver: '12345',
      callerNumber: '13800138000',
      ticket: { ticketId: 'T-1', kind: 'work-order', categoryCode: 'C01', divisionCode: '450300', summary: '12345 hotline call', urgency: 'emergency', callerName: 'Citizen' },
    });
  });
  it('takes agent, seat, division, category and location from X- headers when valid', () => {
    let raw = withHeader('X-Agent-Id', 'a-7');
    raw = withHeader('X-Seat-Id', 's 9', raw);
    raw = withHeader('X-Division-Code', '320000', raw);
    raw = withHeader('X-Category-Code', 'bad code!', raw);
    raw = withHeader('X-Location', 'Qixing district', raw);
    raw = withHeader('Priority', 'normal', raw);
    raw = withHeader('Subject', null, raw);
    const r = build(raw);
    expect(r.agent).toEqual({ agentId: 'a-7', seatId: 'pbx', legId: null });
    expect(r.ticket).toMatchObject({ divisionCode: '320000', categoryCode: 'C01', location: 'Qixing district', urgency: 'normal', summary: 'Call transferred from desk 12345' });
    expect(r.priority).toBe('normal');
  });
  it('from an untrusted peer: no number and no caller name', () => {
    const r = build(INVITE, untrusted);
    expect(r.callerNumber).toBeNull();
    expect(r.ticket.callerName).toBeUndefined();
  });
  it('a 110 switch sends incidents (警单)', () => {
    expect(inboundTransferRequest({ request: parse(INVITE), peer: config.peers[2]!, targetDesk: '12345', switchId: 's', citizenLegId: 'l', ticketId: 'T', callerId: { kind: 'withheld' } }).ticket.kind).toBe('incident');
  });
  it('reads Resource-Priority esnet as an emergency (RFC 4412)', () => {
    expect(priorityOf(parse(withHeader('Priority', null)))).toBe('normal');
    expect(priorityOf(parse(withHeader('Resource-Priority', 'esnet.0', withHeader('Priority', null))))).toBe('emergency');
  });
  it('checks X-Ticket-Id', () => {
    expect(ticketIdOf(parse(INVITE))).toBeNull();
    expect(ticketIdOf(parse(withHeader('X-Ticket-Id', 'WO-2026-0001')))).toBe('WO-2026-0001');
    expect(ticketIdOf(parse(withHeader('X-Ticket-Id', 'a;b')))).toBe('invalid');
  });
});

describe('headers of the new leg', () => {
  const base = {
    config,
    trunk: findTrunk(config, '110-a')!,
    callerId: { kind: 'number', national: '13800138000', type: 'mobile' } as const,
    sourceDesk: '12345',
    targetNumber: '110',
    priority: 'normal' as const,
    ticket: { ticketId: 'T-123', stubUrl: 'https://h.example/v1/tickets/T-123' },
  };
  it('carries the citizen number in From and P-Asserted-Identity, Diversion, and the ticket id three ways', () => {
    expect(legHeaders(base)).toEqual({
      From: '<sip:13800138000@localhost>',
      'P-Asserted-Identity': '<sip:13800138000@hotline.example>',
      Diversion: '<sip:12345@hotline.example>;reason=deflection;counter=1',
      'X-Ticket-Id': 'T-123',
      'User-to-User': '542d313233;encoding=hex',
      'Call-Info': '<https://h.example/v1/tickets/T-123>;purpose=info',
    });
  });
  it('asserts no identity towards a trunk outside the trust domain', () => {
    const h = legHeaders({ ...base, trunk: findTrunk(config, '119-a')! });
    expect(h['P-Asserted-Identity']).toBeUndefined();
    expect(h['From']).toBe('<sip:13800138000@localhost>');
  });
  it('withheld: anonymous From, Privacy: id, no identity at all', () => {
    const h = legHeaders({ ...base, callerId: { kind: 'withheld' } });
    expect(h['From']).toBe('"Anonymous" <sip:anonymous@anonymous.invalid>');
    expect(h['Privacy']).toBe('id');
    expect(h['P-Asserted-Identity']).toBeUndefined();
  });
  it('Privacy: id from the caller: anonymous From, the identity asserted only inside the trust domain', () => {
    const h = legHeaders({ ...base, privacy: true });
    expect(h['From']).toBe('"Anonymous" <sip:anonymous@anonymous.invalid>');
    expect(h['P-Asserted-Identity']).toBe('<sip:13800138000@hotline.example>');
    expect(h['Privacy']).toBe('id');
    const outside = legHeaders({ ...base, privacy: true, trunk: findTrunk(config, '119-a')! });
    expect(JSON.stringify(outside)).not.toContain('13800138000');
  });
  it('reads Privacy: id (RFC 3323)', () => {
    expect(wantsPrivacy(parse(INVITE))).toBe(false);
    expect(wantsPrivacy(parse(withHeader('Privacy', 'id')))).toBe(true);
    expect(wantsPrivacy(parse(withHeader('Privacy', 'header; id')))).toBe(true);
    expect(wantsPrivacy(parse(withHeader('Privacy', 'none')))).toBe(false);
  });
  it('History-Info (RFC 7044) instead of Diversion when configured', () => {
    const h = legHeaders({ ...base, config: { ...config, diversionStyle: 'history-info' } });
    expect(h['Diversion']).toBeUndefined();
    expect(h['History-Info']).toBe('<sip:12345@hotline.example>;index=1,<sip:110@10.1.0.1;cause=302>;index=1.1;mp=1');
  });
  it('Max-Forwards: the caller\'s less one, capped at 70 (RFC 3261 §16.6)', () => {
    expect(nextMaxForwards(parse(INVITE))).toBe(69);
    expect(nextMaxForwards(parse(withHeader('Max-Forwards', '1')))).toBe(0);
    expect(nextMaxForwards(parse(withHeader('Max-Forwards', '200')))).toBe(70);
    expect(nextMaxForwards(parse(withHeader('Max-Forwards', null)))).toBe(70);
    expect(legHeaders({ ...base, maxForwards: 12 })['Max-Forwards']).toBe('12');
    expect(legHeaders(base)['Max-Forwards']).toBeUndefined();
  });
  it('Referred-By and Priority when given', () => {
    const h = legHeaders({ ...base, priority: 'emergency', referredBy: '<sip:110@10.0.0.3>' });
    expect(h['Referred-By']).toBe('<sip:110@10.0.0.3>');
    expect(h['Priority']).toBe('emergency');
  });
  it('User-to-User holds only the id, in hex, and reads back', () => {
    expect(userToUser('T-123')).toBe('542d313233;encoding=hex');
    expect(ticketIdFromUserToUser('542d313233;encoding=hex')).toBe('T-123');
    expect(ticketIdFromUserToUser('542d313233')).toBeNull();
    expect(ticketIdFromUserToUser('zz;encoding=hex')).toBeNull();
    expect(Buffer.byteLength(userToUser('x'.repeat(64)))).toBeLessThan(160);
  });
  it('sends to the desk number at the trunk', () => {
    expect(targetUri(findTrunk(config, '110-a')!, '110')).toBe('sip:110@10.1.0.1:5060');
    expect(targetUri(findTrunk(config, '110-b')!, '110')).toBe('sip:110@10.1.0.2:5070;transport=tcp');
    expect(targetUri({ name: 't', host: 'h', port: 5061, transport: 'tls', trustDomain: true }, '119')).toBe('sips:119@h:5061;transport=tls');
  });
});
