// Every command the driver sends, built by pure functions. A value that could change the meaning of a
// command is refused (EslError 'unsafe-value') or encoded; nothing is ever quoted and hoped for.
//
// Why refuse rather than quote: inside originate's {a=b,c=d} block FreeSWITCH splits on commas, treats
// quotes and "^^<sep>" specially, expands ${...}, and the whole line ends at a newline. Numbers, uuids,
// gateway names and desk ids have narrow alphabets anyway; the one free-form value (the stub URL) is
// percent-encoded to a safe alphabet, which a URL tolerates by design (RFC 3986 §2.1).
import type { CallerId } from '../../domain/phone-number.js';
import { EslError } from './esl-errors.js';

export type CallerIdHeader = 'pid' | 'rpid' | 'none';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TOKEN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const GATEWAY = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const DIALLED = /^\+?[0-9*#]{1,32}$/;
const DIGITS = /^[0-9]{1,32}$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(?::[0-9]{1,5})?$/;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
/**
 * What may stand in a {name=value} pair: printable ASCII without , ' " { } [ ] ^ $ | \ ` or space.
 * '=' and ';' are safe (FreeSWITCH splits a pair at its first '='; "User-to-User=…;encoding=hex" is recorded).
 */
const SAFE_VALUE = /^[A-Za-z0-9._~:/?#@!&*+;=%<>()-]+$/;

function refuse(what: string, value: string): never {
  // The value itself is not echoed: it may be a phone number or hostile bytes bound for a log line.
  throw new EslError('unsafe-value', `${what} has characters that could change the command (${value.length} chars)`);
}

export function checkUuid(what: string, value: string): string {
  if (!UUID.test(value)) refuse(what, value);
  return value.toLowerCase();
}
export function checkToken(what: string, value: string): string {
  if (!TOKEN.test(value)) refuse(what, value);
  return value;
}

/** One channel variable; both halves checked. */
export function channelVariable(name: string, value: string): string {
  if (!VAR_NAME.test(name)) refuse('a channel variable name', name);
  if (!SAFE_VALUE.test(value)) refuse(`the value of ${name}`, value);
  return `${name}=${value}`;
}

/** Percent-encodes every byte outside the safe alphabet (UTF-8 first, so Chinese text survives). */
export function percentEncodeUnsafe(text: string): string {
  let out = '';
  for (const char of text) {
    if (/^[A-Za-z0-9._~:/?#@!&*+;=%-]$/.test(char)) {
      out += char;
    } else {
      for (const byte of Buffer.from(char, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

/** An http(s) URL made safe for a channel variable; anything else is refused. */
export function safeHttpUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    refuse('the ticket stub URL', raw);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') refuse('the ticket stub URL', raw);
  if (url.username || url.password) refuse('the ticket stub URL', raw);
  // A literal '%' that does not start an escape would be read as one by the far side.
  const encoded = percentEncodeUnsafe(url.href).replace(/%(?![0-9A-Fa-f]{2})/g, '%25');
  return encoded;
}

/** RFC 7433: the ticket id as hex of its UTF-8 bytes. Only the id travels, never the ticket. */
export function userToUserHex(ticketId: string): string {
  return `${Buffer.from(checkToken('the ticket id', ticketId), 'utf8').toString('hex')};encoding=hex`;
}

export interface OriginateSpec {
  readonly legId: string;
  readonly transferId: string;
  readonly gateway: string;
  readonly number: string;
  readonly callerId: CallerId;
  readonly callerIdHeader: CallerIdHeader;
  readonly ticketId: string;
  readonly stubUrl: string;
  /** The transferring desk, for Diversion (RFC 5806). */
  readonly sourceDesk: string;
  /** Host part of the Diversion URI: this platform's SIP domain. */
  readonly sipDomain: string;
  readonly answerTimeoutSeconds: number;
  /** Emergencies (110 first, 紧急优先) are marked with SIP Priority: emergency (RFC 3261 §20.26). */
  readonly priority?: 'emergency' | 'normal';
}

/** The {…} variables of the originate, in the order FreeSWITCH will apply them. */
export function originateVariables(spec: OriginateSpec): string[] {
  const timeout = spec.answerTimeoutSeconds;
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > 600) {
    throw new EslError('unsafe-value', 'answerTimeoutSeconds must be a whole number of seconds from 1 to 600');
  }
  if (!HOST.test(spec.sipDomain)) refuse('the SIP domain', spec.sipDomain);
  const desk = checkToken('the source desk', spec.sourceDesk);
  const ticketId = checkToken('the ticket id', spec.ticketId);
  const vars = [
    // pid: P-Asserted-Identity + Privacy (RFC 3325), rpid: Remote-Party-ID, none: neither (recorded in 09).
    channelVariable('sip_cid_type', spec.callerIdHeader),
    channelVariable('originate_timeout', String(timeout)),
  ];
  if (spec.callerId.kind === 'number') {
    if (!DIGITS.test(spec.callerId.national)) refuse('the caller number', spec.callerId.national);
    // 号码双向推送: the citizen's own number as caller ID number and display name, as recorded in 04.
    vars.push(channelVariable('origination_caller_id_number', spec.callerId.national));
    vars.push(channelVariable('origination_caller_id_name', spec.callerId.national));
  } else {
    // Withheld stays withheld (RFC 3323): anonymous in From, Privacy: id with PAI.
    vars.push(channelVariable('origination_caller_id_number', 'anonymous'));
    vars.push(channelVariable('origination_caller_id_name', 'anonymous'));
    vars.push(channelVariable('origination_privacy', 'hide_name:hide_number'));
  }
  vars.push(channelVariable('sip_h_X-Ticket-Id', ticketId));
  vars.push(channelVariable('sip_h_User-to-User', userToUserHex(ticketId)));
  // RFC 3261 §20.9: where the receiving seat can read the stub.
  vars.push(channelVariable('sip_h_Call-Info', `<${safeHttpUrl(spec.stubUrl)}>;purpose=info`));
  // RFC 5806: the desk that handed the call over; "deflection" is a transfer by the answering party.
  vars.push(channelVariable('sip_h_Diversion', `<sip:${desk}@${spec.sipDomain}>;reason=deflection;counter=1`));
  if (spec.priority === 'emergency') vars.push(channelVariable('sip_h_Priority', 'emergency'));
  vars.push(channelVariable('hotline_transfer_id', checkToken('the transfer id', spec.transferId)));
  // Chosen here so events about the new leg can be matched before the job returns.
  vars.push(channelVariable('origination_uuid', checkUuid('the new leg id', spec.legId)));
  return vars;
}

/** "originate {…}sofia/gateway/<gw>/<number> &park": the leg waits parked until it is bridged or joined. */
export function originateCommand(spec: OriginateSpec): string {
  if (!GATEWAY.test(spec.gateway)) refuse('the gateway name', spec.gateway);
  if (!DIALLED.test(spec.number)) refuse('the dialled number', spec.number);
  return `originate {${originateVariables(spec).join(',')}}sofia/gateway/${spec.gateway}/${spec.number} &park`;
}

export function uuidBridgeCommand(a: string, b: string): string {
  return `uuid_bridge ${checkUuid('the first leg', a)} ${checkUuid('the second leg', b)}`;
}

/** uuid_kill <uuid> [cause]: the cause (a FreeSWITCH cause name) reaches the far side as the SIP reason. */
export function uuidKillCommand(legId: string, cause?: string): string {
  const leg = checkUuid('the leg', legId);
  if (cause === undefined) return `uuid_kill ${leg}`;
  if (!/^[A-Z_]{1,40}$/.test(cause)) refuse('the hangup cause', cause);
  return `uuid_kill ${leg} ${cause}`;
}

export function uuidGetvarCommand(legId: string, variable: string): string {
  if (!VAR_NAME.test(variable)) refuse('the variable name', variable);
  return `uuid_getvar ${checkUuid('the leg', legId)} ${variable}`;
}

/** The conference a three-way transfer uses: one per transfer, so its events name the transfer. */
export function conferenceName(transferId: string): string {
  return `hl-${checkToken('the transfer id', transferId)}`;
}

/** Moves a leg (and with both=true its bridged partner, recorded in 06) into the conference. */
export function uuidTransferToConferenceCommand(legId: string, conference: string, profile: string, both: boolean): string {
  checkToken('the conference name', conference);
  checkToken('the conference profile', profile);
  const leg = checkUuid('the leg', legId);
  return `uuid_transfer ${leg}${both ? ' -both' : ''} conference:${conference}@${profile} inline`;
}

export function conferenceHupAllCommand(conference: string): string {
  return `conference ${checkToken('the conference name', conference)} hup all`;
}

/** The event subscription: only what the driver maps. BACKGROUND_JOB before CUSTOM (see the fixtures' README). */
export const EVENT_SUBSCRIPTION =
  'event json CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_HANGUP BACKGROUND_JOB CUSTOM conference::maintenance';

/** A whole command must be one line: the Event Socket ends a command at the first blank line. */
export function assertOneLine(command: string): string {
  if (/[\r\n\0]/.test(command)) throw new EslError('unsafe-value', 'a command must be one line');
  return command;
}
