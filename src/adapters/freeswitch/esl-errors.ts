// One error type for the Event Socket adapter, with stable codes: callers and tests key on the code.

export const ESL_ERROR_CODES = [
  'frame', // bytes that are not an Event Socket message
  'auth-failed', // FreeSWITCH refused the password: terminal, never retried
  'disconnected', // the socket dropped while a command waited for its reply
  'timeout', // no reply, or no BACKGROUND_JOB, within the allowed time
  'command-failed', // FreeSWITCH answered -ERR
  'closed', // the adapter was closed by its owner
  'unsafe-value', // a value would change the meaning of a command (comma, brace, newline …)
  'not-connected', // a command was issued while the switch is unreachable
] as const;
export type EslErrorCode = (typeof ESL_ERROR_CODES)[number];

export class EslError extends Error {
  override readonly name = 'EslError';
  constructor(
    readonly code: EslErrorCode,
    message: string,
    /** FreeSWITCH's own words, e.g. "-ERR No such channel!" */
    readonly reply?: string,
  ) {
    super(message);
  }
}
