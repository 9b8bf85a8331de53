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
import { TransferModeSchema, PrioritySchema, TRANSFER_STATES, TRANSFER_EVENT_TYPES, TARGET_FAILURES, type Transfer, type TransferState, type TransferSummary } from '../../domain/transfer.js';
import { DESK_ID_PATTERN, type DeskId } from '../../domain/ticket-stub.js';
import { HarassmentKindSchema } from '../../domain/routing-decision.js';
import { transitionBusEvent, type BusEvent, type TransitionBusEvent, type TransitionRecord } from '../../ports.js';

const EVENT_FIELD = 'e';
export const TRANSITION_FIELD = 't';

/**
 * The first element of a 't' entry: a later layout takes the next number, and readers skip what they do
 * not know, as they skip an entry holding a value they do not know (a state or a failure added later).
 */
const TRANSITION_FORMAT = 1;

/** The record's fields that are not the transfer's own (transferId, at, to, version), when one differs. */
type RecordOverrides = Partial<Pick<TransitionRecord, 'transferId' | 'at' | 'to' | 'version'>>;
/** A time: epoch milliseconds when the ISO string is the canonical one (what toISOString gives), else the string. */
type Time = number | string;
type Flag = 0 | 1;

// One element per field, in this order. The record's transferId, at, to and version are the transfer's
// id, updatedAt, state and version (the service makes them so); the last element holds any that are not.
type TransitionEntry = [
  format: typeof TRANSITION_FORMAT,
  id: string,
  state: TransferState,
  from: DeskId,
  to: DeskId,
  mode: TransferSummary['mode'],
  priority: TransferSummary['priority'],
  callerId: string, // masked
  agentId: string,
  seatId: string,
  targetDesk: DeskId,
  trunkIndex: number,
  ticketId: string,
  stubDeferred: Flag,
  failure: [reason: NonNullable<TransferSummary['failure']>['reason'], cause: string] | null,
  endedBy: TransferSummary['endedBy'],
  nuisance: [flagged: NonNullable<TransferSummary['nuisance']>['flagged'], recentCalls: number, repeated: Flag] | null,
  version: number,
  createdAt: Time,
  updatedAt: Time, // milliseconds after createdAt when both are numbers
  recordFrom: TransferState | null,
  event: TransitionRecord['event'],
  detail: string | null,
  overrides?: RecordOverrides,
];

// The entry is checked by hand rather than with a zod tuple: every instance decodes every transition
// (eight a transfer), and the tuple's parse took most of the decode (a whole decode 2.85 µs with it,
// 1.80 µs without, hot; in a profile of the transfer benchmark the decode was 4% of the service's
// busy time). It accepts what the zod tuple accepted: tests/unit/feed-stream-entry.test.ts holds each
// rejection, and passed against both.
type Check = (value: unknown) => boolean;
const isString: Check = (v) => typeof v === 'string';
const isInteger: Check = (v) => Number.isInteger(v);
const isNumber: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const oneOf = (values: readonly unknown[]): Check => {
  const known = new Set(values);
  return (v) => known.has(v);
};
const nullable = (check: Check): Check => (v) => v === null || check(v);
const tuple = (...checks: Check[]): Check => (v) => Array.isArray(v) && v.length === checks.length && checks.every((check, i) => check(v[i]));
const isState = oneOf(TRANSFER_STATES);
const isDesk: Check = (v) => typeof v === 'string' && DESK_ID_PATTERN.test(v);
const isFlag = oneOf([0, 1]);
const isTime: Check = (v) => isInteger(v) || isString(v);
const OVERRIDE_CHECKS: ReadonlyMap<string, Check> = new Map([['transferId', isString], ['at', isString], ['to', isState], ['version', isInteger]]);
const isOverrides: Check = (v) =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.entries(v).every(([name, value]) => OVERRIDE_CHECKS.get(name)?.(value) === true);

const ENTRY_CHECKS: readonly Check[] = [
  (v) => v === TRANSITION_FORMAT,
  isString, // id
  isState,
  isDesk, // direction.from
  isDesk, // direction.to
  oneOf(TransferModeSchema.options),
  oneOf(PrioritySchema.options),
  isString, // callerId
  isString, // agent.agentId
  isString, // agent.seatId
  isDesk, // targetDesk
  (v) => isInteger(v) && (v as number) >= 0, // trunkIndex
  isString, // ticketId
  isFlag, // stubDeferred
  nullable(tuple(oneOf([...TARGET_FAILURES, 'citizen-left', 'target-left', 'stub-unavailable']), isString)), // failure
  nullable(oneOf(['citizen', 'agent', 'target'])), // endedBy
  nullable(tuple(nullable(oneOf(HarassmentKindSchema.options)), isNumber, isFlag)), // nuisance
  isInteger, // version
  isTime, // createdAt
  isTime, // updatedAt
  nullable(isState), // record.from
  oneOf(['created', ...TRANSFER_EVENT_TYPES]), // record.event
  nullable(isString), // record.detail
];

function isTransitionEntry(json: unknown): json is TransitionEntry {
  if (!Array.isArray(json)) return false;
  const overrides = json.length === ENTRY_CHECKS.length + 1;
  if (json.length !== ENTRY_CHECKS.length && !overrides) return false;
  // An optional element given as undefined is what JSON cannot hold; null there is refused, as before.
  if (overrides && !isOverrides(json[ENTRY_CHECKS.length])) return false;
  return ENTRY_CHECKS.every((check, i) => check(json[i]));
}

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
  const overrides: RecordOverrides = {
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
  if (!isTransitionEntry(json)) return null;
  const [, id, state, from, to, mode, priority, callerId, agentId, seatId, targetDesk, trunkIndex, ticketId, stubDeferred, failure, endedBy, nuisance, version, created, updated, recordFrom, event, detail, overrides] = json;
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
