// FreeSWITCH hangup causes (switch_channel.c CAUSE_CHART, Q.850 plus FreeSWITCH's own) mapped to the
// stable TargetFailure codes the domain and the agent's toolbar key on. Busy, no answer, unreachable and
// trunk trouble move on to the next backup trunk (备用专线); the others are the far side's answer.
import type { TargetFailure } from '../../domain/transfer.js';

export const FREESWITCH_HANGUP_CAUSES = [
  'NONE',
  'UNSPECIFIED',
  'UNALLOCATED_NUMBER',
  'NO_ROUTE_TRANSIT_NET',
  'NO_ROUTE_DESTINATION',
  'CHANNEL_UNACCEPTABLE',
  'CALL_AWARDED_DELIVERED',
  'NORMAL_CLEARING',
  'USER_BUSY',
  'NO_USER_RESPONSE',
  'NO_ANSWER',
  'SUBSCRIBER_ABSENT',
  'CALL_REJECTED',
  'NUMBER_CHANGED',
  'REDIRECTION_TO_NEW_DESTINATION',
  'EXCHANGE_ROUTING_ERROR',
  'DESTINATION_OUT_OF_ORDER',
  'INVALID_NUMBER_FORMAT',
  'FACILITY_REJECTED',
  'RESPONSE_TO_STATUS_ENQUIRY',
  'NORMAL_UNSPECIFIED',
  'NORMAL_CIRCUIT_CONGESTION',
  'NETWORK_OUT_OF_ORDER',
  'NORMAL_TEMPORARY_FAILURE',
  'SWITCH_CONGESTION',
  'ACCESS_INFO_DISCARDED',
  'REQUESTED_CHAN_UNAVAIL',
  'PRE_EMPTED',
  'FACILITY_NOT_SUBSCRIBED',
  'OUTGOING_CALL_BARRED',
  'INCOMING_CALL_BARRED',
  'BEARERCAPABILITY_NOTAUTH',
  'BEARERCAPABILITY_NOTAVAIL',
  'SERVICE_UNAVAILABLE',
  'BEARERCAPABILITY_NOTIMPL',
  'CHAN_NOT_IMPLEMENTED',
  'FACILITY_NOT_IMPLEMENTED',
  'SERVICE_NOT_IMPLEMENTED',
  'INVALID_CALL_REFERENCE',
  'INCOMPATIBLE_DESTINATION',
  'INVALID_MSG_UNSPECIFIED',
  'MANDATORY_IE_MISSING',
  'MESSAGE_TYPE_NONEXIST',
  'WRONG_MESSAGE',
  'IE_NONEXIST',
  'INVALID_IE_CONTENTS',
  'WRONG_CALL_STATE',
  'RECOVERY_ON_TIMER_EXPIRE',
  'MANDATORY_IE_LENGTH_ERROR',
  'PROTOCOL_ERROR',
  'INTERWORKING',
  'SUCCESS',
  'ORIGINATOR_CANCEL',
  'CRASH',
  'SYSTEM_SHUTDOWN',
  'LOSE_RACE',
  'MANAGER_REQUEST',
  'BLIND_TRANSFER',
  'ATTENDED_TRANSFER',
  'ALLOTTED_TIMEOUT',
  'USER_CHALLENGE',
  'MEDIA_TIMEOUT',
  'PICKED_OFF',
  'USER_NOT_REGISTERED',
  'PROGRESS_TIMEOUT',
  'INVALID_GATEWAY',
  'GATEWAY_DOWN',
  'INVALID_URL',
  'INVALID_PROFILE',
  'NO_PICKUP',
  'SRTP_READ_ERROR',
  'BOWOUT',
  'BUSY_EVERYWHERE',
  'DECLINE',
  'DOES_NOT_EXIST_ANYWHERE',
  'NOT_ACCEPTABLE',
  'UNWANTED',
  'NO_IDENTITY',
  'BAD_IDENTITY_INFO',
  'UNSUPPORTED_CERTIFICATE',
  'INVALID_IDENTITY',
  'STALE_DATE',
  'REJECT_ALL',
] as const;
export type FreeswitchHangupCause = (typeof FREESWITCH_HANGUP_CAUSES)[number];

/** Every cause listed, so a cause added above without a decision here fails to compile. */
const FAILURE_BY_CAUSE: Readonly<Record<FreeswitchHangupCause, TargetFailure>> = {
  // 486 Busy Here / 600 Busy Everywhere
  USER_BUSY: 'busy',
  BUSY_EVERYWHERE: 'busy',
  // Rang without an answer: originate_timeout (FreeSWITCH sends CANCEL), or the far side gave up.
  NO_ANSWER: 'no-answer',
  ALLOTTED_TIMEOUT: 'no-answer',
  PROGRESS_TIMEOUT: 'no-answer',
  NO_PICKUP: 'no-answer',
  // 480 Temporarily Unavailable, 404-like absences of a registered seat, 502
  NO_USER_RESPONSE: 'unreachable',
  SUBSCRIBER_ABSENT: 'unreachable',
  USER_NOT_REGISTERED: 'unreachable',
  DESTINATION_OUT_OF_ORDER: 'unreachable',
  // The trunk itself: gateway marked down by OPTIONS pings, unknown gateway, 500/503, congestion,
  // and Timer B expiry (no answer at all to the INVITE, which FreeSWITCH reports as 408).
  GATEWAY_DOWN: 'trunk-down',
  INVALID_GATEWAY: 'trunk-down',
  INVALID_PROFILE: 'trunk-down',
  NETWORK_OUT_OF_ORDER: 'trunk-down',
  NORMAL_TEMPORARY_FAILURE: 'trunk-down',
  SWITCH_CONGESTION: 'trunk-down',
  NORMAL_CIRCUIT_CONGESTION: 'trunk-down',
  REQUESTED_CHAN_UNAVAIL: 'trunk-down',
  SERVICE_UNAVAILABLE: 'trunk-down',
  EXCHANGE_ROUTING_ERROR: 'trunk-down',
  RECOVERY_ON_TIMER_EXPIRE: 'trunk-down',
  CHAN_NOT_IMPLEMENTED: 'trunk-down',
  // 488 Not Acceptable Here: codecs or media the trunk will not take; a backup trunk may.
  INCOMPATIBLE_DESTINATION: 'trunk-down',
  BEARERCAPABILITY_NOTAVAIL: 'trunk-down',
  NOT_ACCEPTABLE: 'trunk-down',
  // 403 / 603 / barred / identity refused (STIR-style 43x): the far side said no.
  CALL_REJECTED: 'rejected',
  DECLINE: 'rejected',
  REJECT_ALL: 'rejected',
  UNWANTED: 'rejected',
  FACILITY_REJECTED: 'rejected',
  OUTGOING_CALL_BARRED: 'rejected',
  INCOMING_CALL_BARRED: 'rejected',
  BEARERCAPABILITY_NOTAUTH: 'rejected',
  USER_CHALLENGE: 'rejected',
  NO_IDENTITY: 'rejected',
  BAD_IDENTITY_INFO: 'rejected',
  UNSUPPORTED_CERTIFICATE: 'rejected',
  INVALID_IDENTITY: 'rejected',
  STALE_DATE: 'rejected',
  // 404 / 484 / 410 / 604: the number does not lead anywhere on this trunk.
  NO_ROUTE_DESTINATION: 'no-route',
  UNALLOCATED_NUMBER: 'no-route',
  NO_ROUTE_TRANSIT_NET: 'no-route',
  INVALID_NUMBER_FORMAT: 'no-route',
  NUMBER_CHANGED: 'no-route',
  REDIRECTION_TO_NEW_DESTINATION: 'no-route',
  DOES_NOT_EXIST_ANYWHERE: 'no-route',
  INVALID_URL: 'no-route',
  // Everything else is the switch's own trouble or our own doing (ORIGINATOR_CANCEL after a cancel,
  // MANAGER_REQUEST after uuid_kill): not a reason to try another trunk.
  NONE: 'switch-error',
  UNSPECIFIED: 'switch-error',
  CHANNEL_UNACCEPTABLE: 'switch-error',
  CALL_AWARDED_DELIVERED: 'switch-error',
  NORMAL_CLEARING: 'switch-error',
  RESPONSE_TO_STATUS_ENQUIRY: 'switch-error',
  NORMAL_UNSPECIFIED: 'switch-error',
  ACCESS_INFO_DISCARDED: 'switch-error',
  PRE_EMPTED: 'switch-error',
  FACILITY_NOT_SUBSCRIBED: 'switch-error',
  BEARERCAPABILITY_NOTIMPL: 'switch-error',
  FACILITY_NOT_IMPLEMENTED: 'switch-error',
  SERVICE_NOT_IMPLEMENTED: 'switch-error',
  INVALID_CALL_REFERENCE: 'switch-error',
  INVALID_MSG_UNSPECIFIED: 'switch-error',
  MANDATORY_IE_MISSING: 'switch-error',
  MESSAGE_TYPE_NONEXIST: 'switch-error',
  WRONG_MESSAGE: 'switch-error',
  IE_NONEXIST: 'switch-error',
  INVALID_IE_CONTENTS: 'switch-error',
  WRONG_CALL_STATE: 'switch-error',
  MANDATORY_IE_LENGTH_ERROR: 'switch-error',
  PROTOCOL_ERROR: 'switch-error',
  INTERWORKING: 'switch-error',
  SUCCESS: 'switch-error',
  ORIGINATOR_CANCEL: 'switch-error',
  CRASH: 'switch-error',
  SYSTEM_SHUTDOWN: 'switch-error',
  LOSE_RACE: 'switch-error',
  MANAGER_REQUEST: 'switch-error',
  BLIND_TRANSFER: 'switch-error',
  ATTENDED_TRANSFER: 'switch-error',
  MEDIA_TIMEOUT: 'switch-error',
  PICKED_OFF: 'switch-error',
  SRTP_READ_ERROR: 'switch-error',
  BOWOUT: 'switch-error',
};

export function isFreeswitchHangupCause(value: string): value is FreeswitchHangupCause {
  return Object.hasOwn(FAILURE_BY_CAUSE, value);
}

/** Maps a cause as FreeSWITCH writes it (any case, surrounding blanks ignored); unknown → switch-error. */
export function targetFailureFor(cause: string): TargetFailure {
  const name = cause.trim().toUpperCase();
  return isFreeswitchHangupCause(name) ? FAILURE_BY_CAUSE[name] : 'switch-error';
}

export type OriginateResult =
  | { readonly ok: true; readonly legId: string }
  | { readonly ok: false; readonly cause: string; readonly failure: TargetFailure };

/** The BACKGROUND_JOB body of an originate: "+OK <uuid>\n" or "-ERR USER_BUSY\n" (recorded in 04 and 05). */
export function parseOriginateResult(body: string): OriginateResult {
  const text = body.trim();
  const ok = /^\+OK\s+([0-9A-Fa-f-]{36})$/.exec(text);
  if (ok?.[1]) return { ok: true, legId: ok[1].toLowerCase() };
  const err = /^-ERR\s+([A-Z_]+)$/.exec(text);
  if (err?.[1]) return { ok: false, cause: err[1], failure: targetFailureFor(err[1]) };
  // Anything else ("-USAGE: …", a bare "-ERR") is a malformed command, the switch's problem.
  return { ok: false, cause: text.length > 0 ? text.slice(0, 80) : 'EMPTY_REPLY', failure: 'switch-error' };
}
