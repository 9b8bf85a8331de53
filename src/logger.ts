import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Phone numbers are personal data: they are logged only masked, in fields. These paths catch a whole
 * number that reaches a log call by mistake (pino redacts by key path only; a number formatted into a
 * message string cannot be redacted, so messages never carry one).
 */
// Exact paths only: wildcard paths cost a walk of every logged object, on every line.
export const REDACTED_PATHS = [
  'callerNumber',
  'presentedCallerId',
  'national',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    { level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, base: { service: 'hotline-linkage' } },
    destination,
  );
}
