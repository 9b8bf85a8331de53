import { describe, expect, it } from 'vitest';
import {
  FREESWITCH_HANGUP_CAUSES,
  parseOriginateResult,
  targetFailureFor,
} from '../../../src/adapters/freeswitch/hangup-cause.js';
import { TARGET_FAILURES, triesNextTrunk } from '../../../src/domain/transfer.js';
import { readConnections } from '../../support/esl-transcript.js';

describe('FreeSWITCH hangup cause → TargetFailure', () => {
  it.each([
    ['USER_BUSY', 'busy'],
    ['NO_ANSWER', 'no-answer'],
    ['NO_USER_RESPONSE', 'unreachable'],
    ['GATEWAY_DOWN', 'trunk-down'],
    ['NETWORK_OUT_OF_ORDER', 'trunk-down'],
    ['INVALID_GATEWAY', 'trunk-down'],
    ['NORMAL_TEMPORARY_FAILURE', 'trunk-down'],
    ['RECOVERY_ON_TIMER_EXPIRE', 'trunk-down'],
    ['CALL_REJECTED', 'rejected'],
    ['NO_ROUTE_DESTINATION', 'no-route'],
    ['UNALLOCATED_NUMBER', 'no-route'],
    ['ORIGINATOR_CANCEL', 'switch-error'],
    ['NORMAL_CLEARING', 'switch-error'],
  ] as const)('%s is %s', (cause, failure) => {
    expect(targetFailureFor(cause)).toBe(failure);
  });

  it('maps every cause FreeSWITCH defines to one of the stable codes', () => {
    expect(FREESWITCH_HANGUP_CAUSES.length).toBeGreaterThanOrEqual(80);
    for (const cause of FREESWITCH_HANGUP_CAUSES) expect(TARGET_FAILURES).toContain(targetFailureFor(cause));
    expect(new Set(FREESWITCH_HANGUP_CAUSES).size).toBe(FREESWITCH_HANGUP_CAUSES.length);
  });

  it('sends busy, no answer, unreachable and trunk trouble to the backup trunk, and only those', () => {
    const next = FREESWITCH_HANGUP_CAUSES.filter((c) => triesNextTrunk(targetFailureFor(c)));
    expect(next).toEqual(
      expect.arrayContaining(['USER_BUSY', 'NO_ANSWER', 'NO_USER_RESPONSE', 'GATEWAY_DOWN', 'INVALID_GATEWAY', 'NETWORK_OUT_OF_ORDER']),
    );
    expect(next).not.toContain('CALL_REJECTED');
    expect(next).not.toContain('ORIGINATOR_CANCEL');
    expect(next).not.toContain('NO_ROUTE_DESTINATION');
  });

  it('reads causes in any case and with blanks, and an unknown cause is switch-error', () => {
    expect(targetFailureFor(' user_busy\n')).toBe('busy');
    expect(targetFailureFor('SOMETHING_NEW')).toBe('switch-error');
    expect(targetFailureFor('')).toBe('switch-error');
    expect(targetFailureFor('__proto__')).toBe('switch-error');
  });
});

describe('originate job results as recorded', () => {
  const jobBodies = ['04-citizen-to-110-bridged.txt', '05-citizen-to-110-failed.txt']
    .flatMap((f) => readConnections(f)[0]!.messages)
    .filter((m) => m.event?.['Event-Name'] === 'BACKGROUND_JOB')
    .map((m) => m.event!._body!);

  it('the recordings hold one answered and three failed originates', () => {
    expect(jobBodies).toHaveLength(4);
  });

  it('"+OK <uuid>\\n" is an answer on that leg (04)', () => {
    expect(parseOriginateResult(jobBodies[0]!)).toEqual({ ok: true, legId: '9b40ae71-a13b-4eac-b6db-02bf3d293582' });
  });

  it('486, 480 and the originate_timeout are busy, unreachable and no-answer (05)', () => {
    expect(jobBodies.slice(1).map(parseOriginateResult)).toEqual([
      { ok: false, cause: 'USER_BUSY', failure: 'busy' },
      { ok: false, cause: 'NO_USER_RESPONSE', failure: 'unreachable' },
      { ok: false, cause: 'NO_ANSWER', failure: 'no-answer' },
    ]);
  });

  it('the synchronous unknown-gateway reply (07) is trunk-down', () => {
    const body = readConnections('07-blind-transfer-and-errors.txt')[0]!.messages.find((m) => m.body === '-ERR INVALID_GATEWAY\n')!.body;
    expect(parseOriginateResult(body)).toEqual({ ok: false, cause: 'INVALID_GATEWAY', failure: 'trunk-down' });
  });

  it('anything else is a switch error, with the reply kept short', () => {
    expect(parseOriginateResult('-USAGE: <call url> <exten>|&<application_name>(<app_args>)\n')).toMatchObject({ ok: false, failure: 'switch-error' });
    expect(parseOriginateResult('')).toEqual({ ok: false, cause: 'EMPTY_REPLY', failure: 'switch-error' });
  });
});
