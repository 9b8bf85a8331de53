// How a transfer is shown outside: the citizen's number masked (it is whole only in the ticket stub,
// for the receiving seat).
import { z } from 'zod';
import { maskNumber } from '../domain/phone-number.js';
import { TransferRoutingSchema } from '../domain/routing-decision.js';
import { TRANSFER_STATES, type Transfer } from '../domain/transfer.js';

export const TransferViewSchema = z.object({
  id: z.string(),
  state: z.enum(TRANSFER_STATES),
  direction: z.object({ from: z.string(), to: z.string() }),
  mode: z.enum(['blind', 'three-way']),
  priority: z.enum(['emergency', 'normal']),
  firstReceiver: z.string(),
  citizenLeg: z.object({ switchId: z.string(), legId: z.string() }),
  agent: z.object({ agentId: z.string(), seatId: z.string(), legId: z.string().nullable() }),
  target: z.object({ desk: z.string(), number: z.string(), trunk: z.string().nullable(), trunkIndex: z.number() }),
  callerId: z.string().describe('masked: 138****8000, or "withheld"'),
  ticketId: z.string(),
  stubDeferred: z.boolean(),
  failure: z.object({ reason: z.string(), cause: z.string() }).nullable(),
  endedBy: z.enum(['citizen', 'agent', 'target']).nullable(),
  version: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** The routing check's decision and the nuisance mark (src/policy); null without a policy. */
  routing: TransferRoutingSchema.nullable(),
});
export type TransferView = z.infer<typeof TransferViewSchema>;

export function transferView(t: Transfer): TransferView {
  return {
    id: t.id,
    state: t.state,
    direction: { ...t.direction },
    mode: t.mode,
    priority: t.priority,
    firstReceiver: t.firstReceiver,
    citizenLeg: { ...t.citizenLeg },
    agent: { ...t.agent },
    target: {
      desk: t.target.desk,
      number: t.target.number,
      trunk: t.target.trunks[t.trunkIndex] ?? null,
      trunkIndex: t.trunkIndex,
    },
    callerId: maskNumber(t.presentedCallerId),
    ticketId: t.ticketId,
    stubDeferred: t.stubDeferred,
    failure: t.failure ? { ...t.failure } : null,
    endedBy: t.endedBy,
    version: t.version,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
    routing: t.routing ?? null,
  };
}
