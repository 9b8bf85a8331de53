// Configuration of one FreeSWITCH instance, and the factory that builds one driver per instance.
// The composition root parses this with the rest of the config (issue 3, item 5: every instance named
// with its ESL address and the desk it serves; a transfer is driven on the instance holding the citizen).
import { z } from 'zod';
import type { Logger } from 'pino';
import { DeskIdSchema } from '../../domain/ticket-stub.js';
import { EslCallControl } from './esl-call-control.js';

const Token = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'letters, digits, - or _ (at most 64)');
const Hostname = z
  .string()
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/, 'a host name or IPv4 address');

export const FreeswitchConfigSchema = z
  .object({
    switchId: Token,
    desk: DeskIdSchema,
    host: Hostname.default('127.0.0.1'),
    port: z.coerce.number().int().min(1).max(65535).default(8021),
    /** event_socket.conf.xml "password"; it is sent as one line, so no blanks or line breaks. */
    password: z.string().min(1).max(128).regex(/^\S+$/, 'no spaces or line breaks'),
    /** Which header carries the citizen's number: P-Asserted-Identity, Remote-Party-ID, or neither. */
    callerIdHeader: z.enum(['pid', 'rpid', 'none']).default('pid'),
    /** Host part of the Diversion URI naming the transferring desk (RFC 5806). */
    sipDomain: Hostname.default('localhost'),
    conferenceProfile: Token.default('default'),
    returnDestination: z.object({ extension: Token, context: Token }).strict().optional(),
    commandTimeoutMs: z.coerce.number().int().min(100).max(60_000).default(5_000),
    connectTimeoutMs: z.coerce.number().int().min(100).max(60_000).default(5_000),
    reconnectInitialMs: z.coerce.number().int().min(10).max(60_000).default(250),
    reconnectMaxMs: z.coerce.number().int().min(100).max(300_000).default(10_000),
    jobGraceMs: z.coerce.number().int().min(0).max(120_000).default(10_000),
    heartbeatMs: z.coerce.number().int().min(0).max(300_000).default(15_000),
  })
  .strict();
export type FreeswitchConfig = z.infer<typeof FreeswitchConfigSchema>;

export const FreeswitchInstancesSchema = z
  .array(FreeswitchConfigSchema)
  .refine((list) => new Set(list.map((c) => c.switchId)).size === list.length, 'switchId must be unique');

/** One driver per instance, not yet started: call start() on each (and close() on shutdown). */
export function createEslCallControls(configs: readonly FreeswitchConfig[], deps: { logger: Logger }): EslCallControl[] {
  return configs.map((config) => new EslCallControl({ ...config, logger: deps.logger }));
}
