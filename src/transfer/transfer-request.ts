// What an agent's transfer key (or a PBX, or the SIP edge) asks for. Parsed with zod at the edge.
import { z } from 'zod';
import { AppError } from '../errors.js';
import { CallerNumberSchema } from '../domain/phone-number.js';
import {
  CategoryCodeSchema,
  DeskIdSchema,
  DivisionCodeSchema,
  TicketIdSchema,
  TicketKindSchema,
  UrgencySchema,
} from '../domain/ticket-stub.js';
import { HarassmentKindSchema } from '../domain/routing-decision.js';
import { PrioritySchema, TransferModeSchema } from '../domain/transfer.js';

/** FreeSWITCH channel UUIDs and SIP Call-IDs; nothing that could break a command or a header. */
export const LegIdSchema = z.string().regex(/^[0-9A-Za-z][0-9A-Za-z@._:-]{0,127}$/, 'a call leg id');
const PersonIdSchema = z.string().regex(/^[0-9A-Za-z_-]{1,32}$/, '1-32 letters, digits, - or _');
const SwitchIdSchema = z.string().regex(/^[0-9A-Za-z_-]{1,32}$/, 'a switch id from config');

const TicketInputSchema = z
  .object({
    ticketId: TicketIdSchema,
    kind: TicketKindSchema,
    categoryCode: CategoryCodeSchema,
    divisionCode: DivisionCodeSchema,
    summary: z.string().trim().min(1).max(1000),
    location: z.string().trim().min(1).max(200).optional(),
    urgency: UrgencySchema,
    callerName: z.string().trim().min(1).max(64).optional(),
  })
  .strict();

export const TransferRequestSchema = z
  .object({
    citizenLeg: z.object({ switchId: SwitchIdSchema.optional(), legId: LegIdSchema }).strict(),
    agent: z
      .object({ agentId: PersonIdSchema, seatId: PersonIdSchema, legId: LegIdSchema.nullable().default(null) })
      .strict(),
    from: DeskIdSchema,
    to: DeskIdSchema,
    mode: TransferModeSchema.default('blind'),
    priority: PrioritySchema.default('normal'),
    /** 首接负责制; the sending desk when not given. */
    firstReceiver: DeskIdSchema.optional(),
    /** The citizen's number as the switch gave it; null or "anonymous" when withheld. */
    callerNumber: CallerNumberSchema,
    ticket: TicketInputSchema,
    /** Danger to life, property or public safety: goes to 110 at once with emergency priority. */
    danger: z.boolean().optional(),
    /** A nuisance call passed to 110 (恶意骚扰、扬言恐吓…): its own reason on the record. */
    harassment: HarassmentKindSchema.optional(),
    /** Why the agent transfers against the routing list; recorded. */
    reason: z.string().trim().min(2).max(200).optional(),
  })
  .strict();

export type TransferRequestInput = z.input<typeof TransferRequestSchema>;
export type TransferRequest = z.output<typeof TransferRequestSchema>;

/**
 * Parses a request from anything that is not the HTTP route (the SIP edge, scripts): the same schema, and
 * the same error as the API gives, naming the first bad field (an unknown key is named itself).
 */
export function parseTransferRequest(input: unknown): TransferRequest {
  const parsed = TransferRequestSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = (issue?.path ?? []).map(String);
  if (issue?.code === 'unrecognized_keys' && issue.keys[0] !== undefined) path.push(issue.keys[0]);
  const field = path.length > 0 ? path.join('.') : 'request';
  throw new AppError('invalid_request', `${field}: ${issue?.message ?? 'invalid'}`, { field });
}
