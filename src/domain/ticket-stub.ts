// The ticket stub: the context that travels with a transferred call (工单警单双向流转), so the receiving
// seat sees it as the phone rings. One template for both desks (统一…工单警单模板).
import { z } from 'zod';

/** A desk or hotline as named in config: 12345, 110, 119, 120, 122, 12313, expert-110 … */
export const DESK_ID_PATTERN = /^[0-9A-Za-z][0-9A-Za-z_-]{1,31}$/;
export const DeskIdSchema = z.string().regex(DESK_ID_PATTERN, 'a desk id is 2-32 letters, digits, - or _');
export type DeskId = z.infer<typeof DeskIdSchema>;

/** Ticket ids travel in SIP headers and originate strings, so the alphabet is deliberately narrow. */
export const TicketIdSchema = z
  .string()
  .regex(/^[0-9A-Za-z][0-9A-Za-z_-]{0,63}$/, 'a ticket id is 1-64 letters, digits, - or _');

export const TicketKindSchema = z.enum(['work-order', 'incident']); // 工单 (12345) / 警单 (110)
export const UrgencySchema = z.enum(['emergency', 'urgent', 'normal']);

/** GB/T 2260 administrative division: six digits, the first two a province code 11-82. */
export const DivisionCodeSchema = z
  .string()
  .regex(/^(1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|7[1]|8[1-2])\d{4}$/, 'a six-digit GB/T 2260 division code');

/** GB/T 39666 request categories are hierarchical codes; config lists which exist. */
export const CategoryCodeSchema = z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.-]{0,31}$/, 'a category code');

const Text = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    // Control characters would break log lines, headers and the wall display.
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    .refine((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s), 'contains control characters');

// Small enough for a screen pop and a Redis value; a full summary, location and name in Chinese can pass it.
export const TICKET_STUB_MAX_BYTES = 4000;

export const TicketStubSchema = z
  .object({
    ticketId: TicketIdSchema,
    kind: TicketKindSchema,
    sourceDesk: DeskIdSchema,
    categoryCode: CategoryCodeSchema,
    divisionCode: DivisionCodeSchema,
    summary: Text(1000),
    location: Text(200).optional(),
    urgency: UrgencySchema,
    /** National form, or null when the caller withheld the number. Whole only for the receiving seat. */
    callerNumber: z.string().regex(/^\d{3,12}$/).nullable(),
    callerName: Text(64).optional(),
    agentId: z.string().regex(/^[0-9A-Za-z_-]{1,32}$/),
    seatId: z.string().regex(/^[0-9A-Za-z_-]{1,32}$/),
    createdAt: z.iso.datetime(),
  })
  .strict()
  .refine((stub) => new TextEncoder().encode(JSON.stringify(stub)).length <= TICKET_STUB_MAX_BYTES, {
    message: `the ticket stub is larger than ${TICKET_STUB_MAX_BYTES} bytes`,
  });

export type TicketStub = z.infer<typeof TicketStubSchema>;
