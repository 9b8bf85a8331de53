import { describe, expect, it } from 'vitest';
import { canonicalHeaderName, checkOffer, headerValues, parseNameAddr, parseRawMessage, parseUri, validateRequest } from '../../src/adapters/sip/sip-message.js';
import { INVITE, withHeader } from './sip-test-data.js';

const limits = { maxMessageBytes: 16384, maxHeaderBytes: 1024 };

describe('parseUri', () => {
  it('reads a sip URI with user, host, port and params', () => {
    expect(parseUri('sip:110@127.0.0.1:5090;transport=UDP')).toEqual({
      scheme: 'sip',
      user: '110',
      host: '127.0.0.1',
      port: 5090,
      params: { transport: 'UDP' },
      headers: {},
    });
  });
  it('reads URI headers, percent-decoded (Refer-To Replaces)', () => {
    expect(parseUri('sip:119@h?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2')?.headers).toEqual({ replaces: 'abc;to-tag=1;from-tag=2' });
  });
  it('reads sips, tel and a URI without user', () => {
    expect(parseUri('sips:a@example.com')?.scheme).toBe('sips');
    expect(parseUri('tel:+86-138-0013-8000')).toMatchObject({ scheme: 'tel', user: '+8613800138000', host: null });
    expect(parseUri('sip:127.0.0.1:5070')).toMatchObject({ user: null, host: '127.0.0.1', port: 5070 });
    expect(parseUri('sip:[::1]:5060')).toMatchObject({ host: '[::1]', port: 5060 });
  });
  it.each([
    'http://example.com',
    'sip:',
    'sip:a@',
    'sip:a b@host',
    'sip:a@host:99999',
    'sip:a@-bad-',
    'sip:a@host?x',
    'sip:a%zz@host',
    'tel:abc',
    '<sip:a@b>',
  ])('refuses %s', (uri) => expect(parseUri(uri)).toBeNull());
});

describe('parseNameAddr', () => {
  it('reads a quoted display name, URI and tag', () => {
    expect(parseNameAddr('"Citizen" <sip:13800138000@127.0.0.1:5080>;tag=2449SIPpTag001')).toMatchObject({
      display: 'Citizen',
      uri: { user: '13800138000', port: 5080 },
      params: { tag: '2449SIPpTag001' },
    });
  });
  it('reads an unquoted display name and a bare addr-spec', () => {
    expect(parseNameAddr('Agent 7 <sip:7@pbx>')?.display).toBe('Agent 7');
    expect(parseNameAddr('sip:7@pbx;tag=x')).toMatchObject({ display: null, params: { tag: 'x' } });
    expect(parseNameAddr('<sip:7@pbx>')?.display).toBeNull();
  });
  it.each(['', '<>', '<sip:a@b', '"x" <http://a>', '<sip:a@b> junk', 'sip:a@b?x=1', 'sip:a@b, sip:c@d'])('refuses %j', (v) =>
    expect(parseNameAddr(v)).toBeNull(),
  );
});

describe('parseRawMessage', () => {
  it('expands compact header names and unfolds continuation lines', () => {
    const m = parseRawMessage('INVITE sip:a@b SIP/2.0\r\nf: <sip:x@y>;tag=1\r\nSubject: a\r\n  b\r\ni: c\r\n\r\nbody');
    expect(m?.headers).toEqual([
      { name: 'from', value: '<sip:x@y>;tag=1' },
      { name: 'subject', value: 'a b' },
      { name: 'call-id', value: 'c' },
    ]);
    expect(m?.body).toBe('body');
    expect(headerValues(m?.headers ?? [], 'Call-ID')).toEqual(['c']);
  });
  it('has no start line in an empty text', () => expect(parseRawMessage('')).toBeNull());
  it('knows the compact forms', () => {
    expect(['i', 'm', 'l', 'c', 'f', 't', 'v', 'r', 'b', 'o', 'k', 's'].map(canonicalHeaderName)).toEqual([
      'call-id', 'contact', 'content-length', 'content-type', 'from', 'to', 'via', 'refer-to', 'referred-by', 'event', 'supported', 'subject',
    ]);
  });
});

describe('validateRequest: malformed or hostile SIP gets the proper status', () => {
  it('accepts the recorded INVITE', () => {
    const r = validateRequest(INVITE, limits);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.request.method).toBe('INVITE');
      expect(r.request.requestUri.user).toBe('110');
      expect(r.request.from.params['tag']).toBe('2449SIPpTag001');
      expect(r.request.callId).toBe('1-2449@127.0.0.1');
    }
  });
  const table: [string, string, number][] = [
    ['an empty message', '', 400],
    ['a garbage request line', INVITE.replace('INVITE sip:110@127.0.0.1:5070 SIP/2.0', 'HELLO'), 400],
    ['SIP/3.0', INVITE.replace(' SIP/2.0\r\nVia', ' SIP/3.0\r\nVia'), 400],
    ['a missing From', withHeader('From', null), 400],
    ['a missing To', withHeader('To', null), 400],
    ['a missing Call-ID', withHeader('Call-ID', null), 400],
    ['a missing CSeq', withHeader('CSeq', null), 400],
    ['a missing Via', withHeader('Via', null), 400],
    ['a duplicate From', withHeader('X-Dummy', 'x').replace('X-Dummy: x', 'From: <sip:a@b>;tag=2'), 400],
    ['a duplicate Call-ID (compact form)', withHeader('X-Dummy', 'x').replace('X-Dummy: x', 'i: other'), 400],
    ['a duplicate X-Ticket-Id', withHeader('X-Ticket-Id', 'A').replace('X-Ticket-Id: A', 'X-Ticket-Id: A\r\nX-Ticket-Id: B'), 400],
    ['three P-Asserted-Identity values', withHeader('P-Asserted-Identity', '<sip:1@a>, <sip:2@a>, <tel:3>'), 400],
    ['an oversize header', withHeader('Subject', 'x'.repeat(1025)), 400],
    ['a header line without a colon', withHeader('X-Dummy', 'x').replace('X-Dummy: x', 'NoColonHere'), 400],
    ['Max-Forwards 0', withHeader('Max-Forwards', '0'), 483],
    ['a non-numeric Max-Forwards', withHeader('Max-Forwards', 'lots'), 400],
    ['a CSeq for another method', withHeader('CSeq', '1 BYE'), 400],
    ['a malformed CSeq', withHeader('CSeq', 'one INVITE'), 400],
    ['a tel: Request-URI', INVITE.replace('INVITE sip:110@127.0.0.1:5070', 'INVITE tel:110'), 416],
    ['an http: Request-URI', INVITE.replace('INVITE sip:110@127.0.0.1:5070', 'INVITE http://x/'), 416],
    ['a broken Request-URI', INVITE.replace('INVITE sip:110@127.0.0.1:5070', 'INVITE sip:110@'), 400],
    ['a malformed From', withHeader('From', '<sip:13800138000@'), 400],
    ['a malformed To', withHeader('To', 'nothing'), 400],
    ['a Call-ID with spaces', withHeader('Call-ID', 'a b'), 400],
    ['a message over the size limit', INVITE + 'a'.repeat(17000), 513],
  ];
  it.each(table)('refuses %s with %i', (_name, raw, status) => {
    const r = validateRequest(raw, limits);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.rejection.status).toBe(status);
      expect(r.rejection.warning.length).toBeGreaterThan(3);
    }
  });
});

describe('checkOffer', () => {
  const parsed = (raw: string) => {
    const r = validateRequest(raw, limits);
    if (!r.ok) throw new Error(r.rejection.warning);
    return r.request;
  };
  it('accepts an SDP offer with an audio line', () => expect(checkOffer(parsed(INVITE))).toBeNull());
  it('refuses an INVITE without an offer with 488', () => {
    expect(checkOffer(parsed(INVITE.slice(0, INVITE.indexOf('\r\n\r\n') + 4)))?.status).toBe(488);
  });
  it('refuses a body that is not SDP with 415', () => {
    expect(checkOffer(parsed(withHeader('Content-Type', 'text/plain')))?.status).toBe(415);
  });
  it('refuses SDP without a media line with 488', () => {
    expect(checkOffer(parsed(INVITE.replace('m=audio 6200 RTP/AVP 0 8', 'x=none')))?.status).toBe(488);
  });
});
