// Pure mapping between SIP status codes and the domain's words, and REFER progress (RFC 3515 §2.4.5):
// NOTIFY bodies are message/sipfrag (RFC 3420) carrying the status line of the new leg.
import { triesNextTrunk, type FailureReason, type TargetFailure } from '../../domain/transfer.js';

const REASONS: Readonly<Record<number, string>> = {
  100: 'Trying',
  180: 'Ringing',
  181: 'Call Is Being Forwarded',
  182: 'Queued',
  183: 'Session Progress',
  200: 'OK',
  202: 'Accepted',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  410: 'Gone',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  484: 'Address Incomplete',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  491: 'Request Pending',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  513: 'Message Too Large',
  600: 'Busy Everywhere',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? (status < 200 ? 'Progress' : status < 300 ? 'OK' : 'Failure');
}

/**
 * What a final failure from the other desk means. 408/480/486/500/503 and our own timeout are the
 * ones that move to the next backup trunk (备用专线), via `triesNextTrunk` in the domain.
 */
export function failureForStatus(status: number | 'timeout'): TargetFailure {
  if (status === 'timeout') return 'no-answer';
  switch (status) {
    case 486:
    case 600:
      return 'busy';
    case 408:
      return 'no-answer';
    case 480:
      return 'unreachable';
    case 500:
    case 502:
    case 503:
    case 504:
      return 'trunk-down';
    case 401:
    case 403:
    case 407:
    case 603:
      return 'rejected';
    case 404:
    case 410:
    case 484:
    case 485:
    case 604:
      return 'no-route';
    default:
      return 'switch-error';
  }
}

export function statusTriesNextTrunk(status: number | 'timeout'): boolean {
  return triesNextTrunk(failureForStatus(status));
}

/** The final response to send back to a caller whose transfer did not go through. */
export function statusForFailure(reason: FailureReason | 'cancelled'): { status: number; reason: string } {
  const status = ((): number => {
    switch (reason) {
      case 'busy':
        return 486;
      case 'no-answer':
      case 'unreachable':
        return 480;
      case 'trunk-down':
      case 'stub-unavailable':
        return 503;
      case 'rejected':
        return 403;
      case 'no-route':
        return 404;
      case 'cancelled':
      case 'citizen-left':
        return 487;
      case 'target-left':
      case 'switch-error':
        return 502;
    }
  })();
  return { status, reason: reasonPhrase(status) };
}

// ---------------------------------------------------------------- REFER progress

export const SIPFRAG_CONTENT_TYPE = 'message/sipfrag;version=2.0';

/** A sipfrag body: the status line and its CRLF (RFC 3420 §2), e.g. `SIP/2.0 180 Ringing\r\n`. */
export function sipfrag(status: number, reason: string = reasonPhrase(status)): string {
  return `SIP/2.0 ${status} ${reason}\r\n`;
}

export interface ReferNotify {
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly final: boolean;
}

/**
 * The NOTIFY for a REFER's progress. Provisional statuses keep the implicit subscription active;
 * a final one terminates it (RFC 3515 §2.4.7, RFC 6665 §4.1.3 reason=noresource).
 */
export function referNotify(status: number, reason?: string, expiresSeconds = 60): ReferNotify {
  const final = status >= 200;
  return {
    final,
    body: sipfrag(status, reason ?? reasonPhrase(status)),
    headers: {
      Event: 'refer',
      'Subscription-State': final ? 'terminated;reason=noresource' : `active;expires=${expiresSeconds}`,
      'Content-Type': SIPFRAG_CONTENT_TYPE,
    },
  };
}

/** Which provisional responses of the new leg are worth a NOTIFY: 100 is sent at once, then 18x once each. */
export function notifyForProvisional(status: number, alreadySent: ReadonlySet<number>): boolean {
  return status > 100 && status < 200 && !alreadySent.has(status);
}

/** Reads the status code of a sipfrag body, for REFERs the service itself sends. Null when it is not one. */
export function parseSipfragStatus(body: string): number | null {
  const m = /^SIP\/2\.0 ([1-6]\d\d)(?: [^\r\n]*)?\r?\n?/.exec(body.trimStart());
  return m?.[1] === undefined ? null : Number(m[1]);
}

/** A REFER we send is accepted by 200 or 202 (RFC 3515 §2.4.2 allowed either). */
export function referAccepted(status: number): boolean {
  return status === 200 || status === 202;
}

export type ReferOutcome = 'pending' | 'succeeded' | 'failed' | 'timed-out';
/** Progress of a REFER we sent, from the sipfrag statuses seen so far and the time waited. */
export function referOutcome(lastStatus: number | null, waitedMs: number, timeoutMs = 15_000): ReferOutcome {
  if (lastStatus !== null && lastStatus >= 200) return lastStatus < 300 ? 'succeeded' : 'failed';
  return waitedMs >= timeoutMs ? 'timed-out' : 'pending';
}
