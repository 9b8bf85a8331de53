import type { FailureReason } from '../../src/domain/transfer.js';
import { TARGET_FAILURES } from '../../src/domain/transfer.js';

export const FAILURE_REASONS_FOR_TEST: readonly (FailureReason | 'cancelled')[] = [
  ...TARGET_FAILURES,
  'citizen-left',
  'target-left',
  'stub-unavailable',
  'cancelled',
];

export const INVITE = [
  'INVITE sip:110@127.0.0.1:5070 SIP/2.0',
  'Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-2449-1-0;rport=5080',
  'From: "Citizen" <sip:13800138000@127.0.0.1:5080>;tag=2449SIPpTag001',
  'To: <sip:110@127.0.0.1:5070>',
  'Call-ID: 1-2449@127.0.0.1',
  'CSeq: 1 INVITE',
  'Contact: <sip:13800138000@127.0.0.1:5080>',
  'Max-Forwards: 70',
  'Subject: 12345 hotline call',
  'Priority: emergency',
  'Content-Type: application/sdp',
  'Content-Length:   155',
  '',
  'v=0',
  'o=citizen 53655765 2353687637 IN IP4 127.0.0.1',
  's=-',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'm=audio 6200 RTP/AVP 0 8',
  'a=rtpmap:0 PCMU/8000',
  '',
].join('\r\n');

/** The INVITE with one header line replaced (or removed with null, or added when absent). */
export function withHeader(name: string, value: string | null, raw = INVITE): string {
  const lines = raw.split('\r\n');
  const i = lines.findIndex((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  if (value === null) {
    if (i !== -1) lines.splice(i, 1);
  } else if (i === -1) lines.splice(1, 0, `${name}: ${value}`);
  else lines[i] = `${name}: ${value}`;
  return lines.join('\r\n');
}
