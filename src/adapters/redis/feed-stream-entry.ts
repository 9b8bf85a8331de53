// How bus events are written to the feed stream and read back: pure, so the format is tested without
// Redis. Every instance reads what every other writes, so a format change must be readable both ways
// round during a rolling upgrade; the forms below say which versions wrote them.
//
//   field 'e'  the bus event's JSON. Every event but a transition; earlier versions wrote transitions
//              here too (as {kind:'transition', transfer: summary, record}), and before that the whole
//              transfer (kind 'transfer').
//   field 't'  a transition as a positional JSON array (TRANSITION_FORMAT below). A transition is eight
//              of a transfer's entries, and Redis' append-only file and every replica receive each one
//              whole: as keyed JSON (~640 bytes) it was half of what a transfer made Redis append. An
//              instance from before this form reads no field 'e' in it and skips the entry.
import { z } from 'zod';
import { TransferModeSchema, PrioritySchema, TRANSFER_STATES, TRANSFER_EVENT_TYPES, TARGET_FAILURES, type Transfer } from '../../domain/transfer.js';
import { DeskIdSchema } from '../../domain/ticket-stub.js';
import { HarassmentKindSchema } from '../../domain/routing-decision.js';
import { transitionBusEvent, type BusEvent, type TransitionBusEvent, type TransitionRecord } from '../../ports.js';

const EVENT_FIELD = 'e';
export const TRANSITION_FIELD = 't';

/**
 * The first element of a 't' entry: a later layout takes the next number, and readers skip what they do
 * not know, as they skip an entry holding a value they do not know (a state or a failure added later).
 */
const TRANSITION_FORMAT = 1;

const State = z.enum(TRANSFER_STATES);
const Flag = z.union([z.literal(0), z.literal(1)]);
/** A time: epoch milliseconds when the ISO string is the canonical one (what toISOString gives), else the string. */
const Time = z.union([z.number().int(), z.string()]);

/** The record's fields that are not the transfer's own (transferId, at, to, version), when one differs. */
const RecordOverridesSchema = z
  .object({ transferId: z.string(), at: z.string(), to: State, version: z.number().int() })
  .partial()
  .strict();

// One element per field, in this order. The record's transferId, at, to and version are the transfer's
// id, updatedAt, state and version (the service makes them so); the last element holds any that are not.
const TransitionEntrySchema = z.tuple([
  z.literal(TRANSITION_FORMAT),
  z.string(), //                                       id
  State, //                                            state
  DeskIdSchema, //                                     direction.from
  DeskIdSchema, //                                     direction.to
  TransferModeSchema, //                               mode
  PrioritySchema, //                                   priority
  z.string(), //                                       callerId (masked)
  z.string(), //                                       agent.agentId
  z.string(), //                                       agent.seatId
  DeskIdSchema, //                                     targetDesk
  z.number().int().nonnegative(), //                   trunkIndex
  z.string(), //                                       ticketId
  Flag, //                                             stubDeferred
  z.tuple([z.enum([...TARGET_FAILURES, 'citizen-left', 'target-left', 'stub-unavailable']), z.string()]).nullable(), // failure: reason, cause
  z.enum(['citizen', 'agent', 'target']).nullable(), // endedBy
  z.tuple([HarassmentKindSchema.nullable(), z.number(), Flag]).nullable(), // nuisance: flagged, recentCalls, repeated
  z.number().int(), //                                 version
  Time, //                                             createdAt
  Time, //                                             updatedAt: milliseconds after createdAt when both are numbers
  State.nullable(), //                                 record.from
  z.enum(['created', ...TRANSFER_EVENT_TYPES]), //     record.event
  z.string().nullable(), //                            record.detail
  RecordOverridesSchema.optional(),
]);
type TransitionEntry = z.infer<typeof TransitionEntrySchema>;

/** Epoch milliseconds of an ISO time that round-trips through them exactly; null for any other string. */
function canonicalMs(iso: string): number | null {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) && new Date(ms).toISOString() === iso ? ms : null;
}

/** The ISO time of epoch milliseconds; null out of a date's range (where toISOString would throw). */
function isoOf(ms: number): string | null {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** A transition as the value of a 't' entry. */
export function encodeTransition({ transfer: s, record: r }: TransitionBusEvent): string {
  const createdMs = canonicalMs(s.createdAt);
  const updatedMs = createdMs === null ? null : canonicalMs(s.updatedAt);
  const overrides: z.infer<typeof RecordOverridesSchema> = {
    ...(r.transferId !== s.id && { transferId: r.transferId }),
    ...(r.at !== s.updatedAt && { at: r.at }),
    ...(r.to !== s.state && { to: r.to }),
    ...(r.version !== s.version && { version: r.version }),
  };
  const entry: TransitionEntry = [
    TRANSITION_FORMAT,
    s.id,
    s.state,
    s.direction.from,
    s.direction.to,
    s.mode,
    s.priority,
    s.callerId,
    s.agent.agentId,
    s.agent.seatId,
    s.targetDesk,
    s.trunkIndex,
    s.ticketId,
    s.stubDeferred ? 1 : 0,
    s.failure ? [s.failure.reason, s.failure.cause] : null,
    s.endedBy,
    s.nuisance ? [s.nuisance.flagged, s.nuisance.recentCalls, s.nuisance.repeated ? 1 : 0] : null,
    s.version,
    createdMs ?? s.createdAt,
    createdMs !== null && updatedMs !== null ? updatedMs - createdMs : s.updatedAt,
    r.from,
    r.event,
    r.detail ?? null,
  ];
  if (Object.keys(overrides).length > 0) entry[23] = overrides;
  return JSON.stringify(entry);
}

/** The transition a 't' entry holds; null when it is not one this version can read. */
export function decodeTransition(raw: string): TransitionBusEvent | null {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return null;
  }
  const parsed = TransitionEntrySchema.safeParse(json);
  if (!parsed.success) return null;
  const [, id, state, from, to, mode, priority, callerId, agentId, seatId, targetDesk, trunkIndex, ticketId, stubDeferred, failure, endedBy, nuisance, version, created, updated, recordFrom, event, detail, overrides] =
    parsed.data;
  const createdAt = typeof created === 'number' ? isoOf(created) : created;
  // A number relative to a createdAt that is not one, or out of a date's range: no writer makes these.
  const updatedAt = typeof updated === 'string' ? updated : typeof created === 'number' ? isoOf(created + updated) : null;
  if (createdAt === null || updatedAt === null) return null;
  const record: TransitionRecord = {
    transferId: overrides?.transferId ?? id,
    at: overrides?.at ?? updatedAt,
    from: recordFrom,
    to: overrides?.to ?? state,
    event,
    version: overrides?.version ?? version,
    ...(detail !== null && { detail }),
  };
  return {
    kind: 'transition',
    transfer: {
      id,
      state,
      direction: { from, to },
      mode,
      priority,
      callerId,
      agent: { agentId, seatId },
      targetDesk,
      trunkIndex,
      ticketId,
      stubDeferred: stubDeferred === 1,
      failure: failure ? { reason: failure[0], cause: failure[1] } : null,
      endedBy,
      nuisance: nuisance ? { flagged: nuisance[0], recentCalls: nuisance[1], repeated: nuisance[2] === 1 } : null,
      version,
      createdAt,
      updatedAt,
    },
    record,
  };
}

/** A stored transition as the store's scripts append it (field TRANSITION_FIELD). */
export function transitionEntryValue(transfer: Transfer, record: TransitionRecord): string {
  return encodeTransition(transitionBusEvent(transfer, record));
}

/** The field and value a bus event is appended as. */
export function entryOf(event: BusEvent): [field: string, value: string] {
  return event.kind === 'transition' ? [TRANSITION_FIELD, encodeTransition(event)] : [EVENT_FIELD, JSON.stringify(event)];
}

/** An entry written by an earlier version of the service (or an instance not yet upgraded): the whole transfer. */
interface LegacyTransitionEntry {
  readonly kind: 'transfer';
  readonly transfer: Transfer;
  readonly record: TransitionRecord;
}

/** The bus event an entry's fields hold, in any form above; null when it holds none this version reads. */
export function eventOfEntry(fields: readonly string[]): BusEvent | null {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1] as string;
    if (fields[i] === TRANSITION_FIELD) return decodeTransition(value);
    if (fields[i] === EVENT_FIELD) return eventOfJson(value);
  }
  return null;
}

function eventOfJson(raw: string): BusEvent | null {
  try {
    const parsed = JSON.parse(raw) as BusEvent | LegacyTransitionEntry;
    if (parsed.kind === 'transfer') return transitionBusEvent(parsed.transfer, parsed.record);
    return parsed;
  } catch {
    return null; // not ours: another writer on the stream (or a transfer entry that is not one)
  }
}
