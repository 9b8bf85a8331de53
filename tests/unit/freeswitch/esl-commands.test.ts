import { describe, expect, it } from 'vitest';
import {
  conferenceHupAllCommand,
  originateCommand,
  percentEncodeUnsafe,
  safeHttpUrl,
  userToUserHex,
  uuidBridgeCommand,
  uuidKillCommand,
  uuidTransferToConferenceCommand,
  type OriginateSpec,
} from '../../../src/adapters/freeswitch/esl-commands.js';
import { EslError } from '../../../src/adapters/freeswitch/esl-errors.js';
import { readConnections } from '../../support/esl-transcript.js';

const LEG = '9b40ae71-a13b-4eac-b6db-02bf3d293582';
const TRANSFER = '5a0c7d3e-1111-4222-8333-944455556666';
const spec: OriginateSpec = {
  legId: LEG,
  transferId: TRANSFER,
  gateway: 'sw110',
  number: '110',
  callerId: { kind: 'number', national: '13800138000', type: 'mobile' },
  callerIdHeader: 'pid',
  ticketId: 'T-123',
  stubUrl: 'https://hotline.example.cn/v1/tickets/T-123',
  sourceDesk: '12345',
  sipDomain: 'hotline.example.cn',
  answerTimeoutSeconds: 20,
};

const EXPECTED_NAMES = [
  'sip_cid_type',
  'originate_timeout',
  'origination_caller_id_number',
  'origination_caller_id_name',
  'sip_h_X-Ticket-Id',
  'sip_h_User-to-User',
  'sip_h_Call-Info',
  'sip_h_Diversion',
  'hotline_transfer_id',
  'origination_uuid',
];

/**
 * Reads an originate the way FreeSWITCH does: the {…} block ends at the first '}', pairs are split at
 * every ',', a pair at its first '='. Quotes and "^^" would be special, so they must never appear.
 */
function parseOriginate(command: string): { vars: [string, string][]; rest: string } {
  expect(command).not.toMatch(/[\r\n\0]/);
  const m = /^originate \{([^}]*)\}(.*)$/.exec(command);
  if (!m) throw new Error(`not an originate: ${command}`);
  const block = m[1]!;
  expect(block).not.toMatch(/['"^${}[\]\\ ]/);
  return { vars: block.split(',').map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]), rest: m[2]! };
}

describe('the originate command', () => {
  it('carries the recorded caller-ID and ticket variables byte for byte as in 04', () => {
    const recorded = readConnections('04-citizen-to-110-bridged.txt')[0]!.commands.find((c) => c.startsWith('bgapi originate'))!;
    const built = originateCommand(spec);
    for (const pair of [
      'origination_caller_id_number=13800138000',
      'origination_caller_id_name=13800138000',
      'sip_h_X-Ticket-Id=T-123',
      'sip_h_User-to-User=542d313233;encoding=hex',
      `origination_uuid=${LEG}`,
    ]) {
      expect(recorded).toContain(pair);
      expect(built).toContain(pair);
    }
    expect(built.endsWith('}sofia/gateway/sw110/110 &park')).toBe(true);
  });

  it('sets every variable the transfer needs, in order, and nothing else', () => {
    const { vars, rest } = parseOriginate(originateCommand(spec));
    expect(vars.map(([name]) => name)).toEqual(EXPECTED_NAMES);
    expect(Object.fromEntries(vars)).toMatchObject({
      sip_cid_type: 'pid',
      originate_timeout: '20',
      'sip_h_Call-Info': '<https://hotline.example.cn/v1/tickets/T-123>;purpose=info',
      'sip_h_Diversion': '<sip:12345@hotline.example.cn>;reason=deflection;counter=1',
      hotline_transfer_id: TRANSFER,
    });
    expect(rest).toBe('sofia/gateway/sw110/110 &park');
  });

  it.each(['pid', 'rpid', 'none'] as const)('sip_cid_type=%s as configured (recorded variants in 09)', (header) => {
    expect(originateCommand({ ...spec, callerIdHeader: header })).toContain(`{sip_cid_type=${header},`);
  });

  it('an emergency is marked Priority: emergency (RFC 3261 §20.26), a normal transfer is not', () => {
    const names = (priority: 'emergency' | 'normal') => parseOriginate(originateCommand({ ...spec, priority })).vars.map(([n]) => n);
    expect(names('emergency')).toEqual([...EXPECTED_NAMES.slice(0, 8), 'sip_h_Priority', ...EXPECTED_NAMES.slice(8)]);
    expect(names('normal')).toEqual(EXPECTED_NAMES);
    expect(originateCommand({ ...spec, priority: 'emergency' })).toContain(',sip_h_Priority=emergency,');
  });

  it('a withheld number stays withheld: anonymous, with privacy asked for', () => {
    const { vars } = parseOriginate(originateCommand({ ...spec, callerId: { kind: 'withheld' } }));
    expect(Object.fromEntries(vars)).toMatchObject({
      origination_caller_id_number: 'anonymous',
      origination_caller_id_name: 'anonymous',
      origination_privacy: 'hide_name:hide_number',
    });
    expect(vars.map(([n]) => n).join(',')).not.toContain('13800138000');
  });

  it('User-to-User is the hex of the ticket id only (RFC 7433)', () => {
    expect(userToUserHex('T-123')).toBe('542d313233;encoding=hex');
    expect(userToUserHex('WO_20261123-0001')).toBe(`${Buffer.from('WO_20261123-0001').toString('hex')};encoding=hex`);
  });
});

describe('hostile values never change the command', () => {
  const HOSTILE = [
    '13800138000,origination_uuid=00000000-0000-0000-0000-000000000000',
    'T-1}sofia/gateway/evil/1 &park',
    "T'1",
    'T"1',
    'T 1',
    'T-1\nbgapi originate sofia/gateway/evil/1 &park',
    'T-1\r\n\r\n',
    '^^:a=b:c=d',
    '${system(rm -rf /)}',
    '市民热线',
    '工单,sip_h_X=1',
    '[leg_timeout=1]',
    '',
    'a'.repeat(65),
  ];
  const fields: [string, (v: string) => OriginateSpec][] = [
    ['ticket id', (v) => ({ ...spec, ticketId: v })],
    ['gateway', (v) => ({ ...spec, gateway: v })],
    ['dialled number', (v) => ({ ...spec, number: v })],
    ['source desk', (v) => ({ ...spec, sourceDesk: v })],
    ['SIP domain', (v) => ({ ...spec, sipDomain: v })],
    ['transfer id', (v) => ({ ...spec, transferId: v })],
    ['leg id', (v) => ({ ...spec, legId: v })],
    ['caller number', (v) => ({ ...spec, callerId: { kind: 'number', national: v, type: 'mobile' } })],
  ];
  for (const [field, make] of fields) {
    it.each(HOSTILE)(`the ${field} %j is refused with unsafe-value`, (value) => {
      let caught: unknown = null;
      try {
        originateCommand(make(value));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(EslError);
      expect((caught as EslError).code).toBe('unsafe-value');
      // The refusal never echoes the value (it may be a number, or bytes bound for a log line).
      if (value.length > 3) expect((caught as EslError).message).not.toContain(value);
    });
  }

  it.each([
    'https://hotline.example.cn/v1/tickets/T-1,origination_uuid=x',
    'https://hotline.example.cn/v1/tickets/工单-1',
    "https://hotline.example.cn/v1/tickets/T'1\"}{",
    'https://hotline.example.cn/v1/tickets/T-1?x=${system(id)}&y=^^:',
    'https://hotline.example.cn/v1/tickets/T-1#a b|c',
    'https://hotline.example.cn/v1/%zz/100%',
  ])('the stub URL %j is percent-encoded and the variable list stays exactly the same', (url) => {
    const { vars, rest } = parseOriginate(originateCommand({ ...spec, stubUrl: url }));
    expect(vars.map(([name]) => name)).toEqual(EXPECTED_NAMES);
    expect(rest).toBe('sofia/gateway/sw110/110 &park');
    const callInfo = Object.fromEntries(vars)['sip_h_Call-Info']!;
    expect(callInfo).toMatch(/^<https:\/\/hotline\.example\.cn\/[A-Za-z0-9._~:/?#@!&*+;=%-]*>;purpose=info$/);
    expect(callInfo).not.toMatch(/%(?![0-9A-F]{2})/);
  });

  it('Chinese text in a URL survives as UTF-8 percent-encoding', () => {
    expect(safeHttpUrl('https://h.example.cn/t/工单')).toBe('https://h.example.cn/t/%E5%B7%A5%E5%8D%95');
    expect(percentEncodeUnsafe('市,民')).toBe('%E5%B8%82%2C%E6%B0%91');
  });

  it.each(['javascript:alert(1)', 'sip:110@evil', 'https://user:pw@h.example.cn/t/1', 'not a url'])('the stub URL %j is refused', (url) => {
    expect(() => originateCommand({ ...spec, stubUrl: url })).toThrow(EslError);
  });

  it.each([0, -1, 1.5, 601, Number.NaN])('answerTimeoutSeconds %d is refused', (seconds) => {
    expect(() => originateCommand({ ...spec, answerTimeoutSeconds: seconds })).toThrow(/answerTimeoutSeconds/);
  });
});

describe('the other commands', () => {
  it('uuid_bridge takes two uuids and nothing else (recorded form in 04)', () => {
    expect(uuidBridgeCommand('9169450D-E820-42E3-BF1F-588DF5261AC6', LEG)).toBe(`uuid_bridge 9169450d-e820-42e3-bf1f-588df5261ac6 ${LEG}`);
    expect(() => uuidBridgeCommand(`${LEG} ${LEG}`, LEG)).toThrow(EslError);
    expect(() => uuidBridgeCommand(`${LEG}\n\nexit`, LEG)).toThrow(EslError);
  });

  it('uuid_kill carries a FreeSWITCH cause name, and nothing else', () => {
    expect(uuidKillCommand(LEG)).toBe(`uuid_kill ${LEG}`);
    expect(uuidKillCommand(LEG, 'ORIGINATOR_CANCEL')).toBe(`uuid_kill ${LEG} ORIGINATOR_CANCEL`);
    expect(() => uuidKillCommand(LEG, 'NORMAL_CLEARING\n\nexit')).toThrow(EslError);
    expect(() => uuidKillCommand(LEG, 'citizen left')).toThrow(EslError);
  });

  it('a three-way transfer moves the citizen with -both and the other desk on its own (recorded form in 06)', () => {
    expect(uuidTransferToConferenceCommand(LEG, 'hl-1', 'default', true)).toBe(`uuid_transfer ${LEG} -both conference:hl-1@default inline`);
    expect(uuidTransferToConferenceCommand(LEG, 'hl-1', 'default', false)).toBe(`uuid_transfer ${LEG} conference:hl-1@default inline`);
    expect(() => uuidTransferToConferenceCommand(LEG, 'hl 1', 'default', false)).toThrow(EslError);
    expect(() => conferenceHupAllCommand('x@evil kick all')).toThrow(EslError);
  });
});
