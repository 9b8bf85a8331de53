import { describe, expect, it } from 'vitest';
import { FAILURE_REASONS_FOR_TEST } from './sip-test-data.js';
import {
  failureForStatus,
  notifyForProvisional,
  parseSipfragStatus,
  reasonPhrase,
  referAccepted,
  referNotify,
  referOutcome,
  sipfrag,
  statusForFailure,
  statusTriesNextTrunk,
} from '../../src/adapters/sip/sip-status.js';

describe('failureForStatus: a SIP final status in the domain\'s words', () => {
  const table: [number | 'timeout', string][] = [
    [486, 'busy'],
    [600, 'busy'],
    [408, 'no-answer'],
    ['timeout', 'no-answer'],
    [480, 'unreachable'],
    [500, 'trunk-down'],
    [502, 'trunk-down'],
    [503, 'trunk-down'],
    [504, 'trunk-down'],
    [401, 'rejected'],
    [403, 'rejected'],
    [407, 'rejected'],
    [603, 'rejected'],
    [404, 'no-route'],
    [410, 'no-route'],
    [484, 'no-route'],
    [485, 'no-route'],
    [604, 'no-route'],
    [487, 'switch-error'],
    [488, 'switch-error'],
    [400, 'switch-error'],
    [606, 'switch-error'],
    [599, 'switch-error'],
  ];
  it.each(table)('%s is %s', (status, failure) => {
    expect(failureForStatus(status)).toBe(failure);
  });
});

describe('statusTriesNextTrunk: the backup trunk (备用专线) is tried on 408/480/486/500/503 and timeout only', () => {
  it.each([408, 480, 486, 500, 503, 'timeout'] as const)('%s moves on', (s) => expect(statusTriesNextTrunk(s)).toBe(true));
  it.each([403, 404, 487, 488, 603, 604, 400])('%s does not', (s) => expect(statusTriesNextTrunk(s)).toBe(false));
});

describe('statusForFailure: what the caller is told when the transfer does not go through', () => {
  const expected: Record<string, number> = {
    busy: 486,
    'no-answer': 480,
    unreachable: 480,
    'trunk-down': 503,
    'stub-unavailable': 503,
    rejected: 403,
    'no-route': 404,
    cancelled: 487,
    'citizen-left': 487,
    'target-left': 502,
    'switch-error': 502,
  };
  it.each(FAILURE_REASONS_FOR_TEST)('%s has a status and its reason phrase', (reason) => {
    const result = statusForFailure(reason);
    expect(result.status).toBe(expected[reason]);
    expect(result.reason).toBe(reasonPhrase(result.status));
  });
  it('round-trips every next-trunk failure back to the same failure', () => {
    for (const reason of ['busy', 'unreachable', 'trunk-down', 'rejected', 'no-route'] as const) {
      expect(failureForStatus(statusForFailure(reason).status)).toBe(reason);
    }
  });
});

describe('REFER progress (RFC 3515, sipfrag RFC 3420)', () => {
  it('a sipfrag is the status line with its CRLF, as recorded (20 and 16 bytes)', () => {
    expect(sipfrag(100)).toBe('SIP/2.0 100 Trying\r\n');
    expect(Buffer.byteLength(sipfrag(100))).toBe(20);
    expect(Buffer.byteLength(sipfrag(200))).toBe(16);
    expect(sipfrag(486)).toBe('SIP/2.0 486 Busy Here\r\n');
    expect(sipfrag(299, 'Custom')).toBe('SIP/2.0 299 Custom\r\n');
  });
  it.each([100, 180, 183])('a provisional %s keeps the subscription active', (status) => {
    const n = referNotify(status);
    expect(n.final).toBe(false);
    expect(n.headers).toEqual({ Event: 'refer', 'Subscription-State': 'active;expires=60', 'Content-Type': 'message/sipfrag;version=2.0' });
  });
  it.each([200, 486, 503, 603])('a final %s terminates it (reason=noresource)', (status) => {
    const n = referNotify(status);
    expect(n.final).toBe(true);
    expect(n.headers['Subscription-State']).toBe('terminated;reason=noresource');
    expect(n.body.startsWith(`SIP/2.0 ${status} `)).toBe(true);
  });
  it('notifies each 18x once, never 100 again', () => {
    const sent = new Set([100]);
    expect(notifyForProvisional(100, sent)).toBe(false);
    expect(notifyForProvisional(180, sent)).toBe(true);
    sent.add(180);
    expect(notifyForProvisional(180, sent)).toBe(false);
    expect(notifyForProvisional(183, sent)).toBe(true);
    expect(notifyForProvisional(200, sent)).toBe(false);
  });
  it('reads the status of a sipfrag body for REFERs the service sends', () => {
    expect(parseSipfragStatus('SIP/2.0 180 Ringing\r\n')).toBe(180);
    expect(parseSipfragStatus('SIP/2.0 200 OK')).toBe(200);
    expect(parseSipfragStatus('  SIP/2.0 603 Declined\r\nFoo: bar\r\n')).toBe(603);
    expect(parseSipfragStatus('HTTP/1.1 200 OK')).toBeNull();
    expect(parseSipfragStatus('SIP/2.0 99 Low')).toBeNull();
    expect(parseSipfragStatus('')).toBeNull();
  });
  it('accepts 200 or 202 to a REFER it sends', () => {
    expect(referAccepted(202)).toBe(true);
    expect(referAccepted(200)).toBe(true);
    expect(referAccepted(403)).toBe(false);
    expect(referAccepted(100)).toBe(false);
  });
  it('gives up on a REFER after the timeout (15 s by default)', () => {
    expect(referOutcome(null, 0)).toBe('pending');
    expect(referOutcome(180, 14_999)).toBe('pending');
    expect(referOutcome(180, 15_000)).toBe('timed-out');
    expect(referOutcome(null, 20_000, 30_000)).toBe('pending');
    expect(referOutcome(200, 99_000)).toBe('succeeded');
    expect(referOutcome(486, 1)).toBe('failed');
  });
  it('has a reason phrase for every status it sends', () => {
    for (const s of [400, 403, 404, 481, 482, 483, 488, 491, 501, 503, 513]) expect(reasonPhrase(s)).not.toMatch(/^(Failure|OK|Progress)$/);
    expect(reasonPhrase(499)).toBe('Failure');
  });
});

describe('refusalFor: the SIP answer when the transfer service throws', () => {
  it('a client error of the service is a 403 naming its code', async () => {
    const { refusalFor } = await import('../../src/adapters/sip/drachtio-call-control.js');
    expect(refusalFor(Object.assign(new Error('no'), { statusCode: 422, code: 'ROUTE_NOT_ALLOWED' }))).toEqual({
      status: 403,
      reason: 'Forbidden',
      warning: 'transfer refused (ROUTE_NOT_ALLOWED)',
    });
    expect(refusalFor(Object.assign(new Error('x'), { statusCode: 409, code: 'has spaces' })).warning).toBe('transfer refused');
  });
  it('anything else is a 503', async () => {
    const { refusalFor } = await import('../../src/adapters/sip/drachtio-call-control.js');
    expect(refusalFor(new Error('redis down')).status).toBe(503);
    expect(refusalFor(Object.assign(new Error('x'), { statusCode: 500, code: 'STORE_DOWN' })).warning).toBe('the transfer could not be started (STORE_DOWN)');
    expect(refusalFor('weird').status).toBe(503);
  });
});
