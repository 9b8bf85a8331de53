// The live feed's wire protocol: JSON text frames, each with the schema version `v`. Documented in
// src/feed/README.md; every frame a client sends is parsed here, and tests parse every frame the
// server sends with ServerMessageSchema. New event kinds (feedback write-back, nuisance flags) are new
// members of ServerMessageSchema; clients ignore types they do not know.
import { z } from 'zod';
import { NuisanceMarkSchema } from '../domain/routing-decision.js';
import { TicketStubSchema } from '../domain/ticket-stub.js';
import { TRANSFER_STATES } from '../domain/transfer.js';

export const SCHEMA_VERSION = 1;
/** The websocket subprotocol; the API key rides beside it as `bearer.<key>` (see auth below). */
export const FEED_SUBPROTOCOL = 'hotline-feed.v1';
export const FEED_PATH = '/v1/feed';

/** Close codes (4000-4999 are the application's own, RFC 6455 §7.4.2). */
export const CLOSE = {
  goingAway: 1001, // the instance is shutting down: reconnect (to another)
  invalidMessage: 4400, // a frame that is not a valid client message
  forbidden: 4403, // e.g. a seat asking for a desk its key may not watch
  subscribeTimeout: 4408, // no subscribe frame in time
  slowConsumer: 4429, // the client read too slowly; reconnect with `since` to resume
} as const;

const V = z.literal(SCHEMA_VERSION);
/** Opaque; compare for equality only. Resume from the last one seen (a delta's or a heartbeat's). */
const Seq = z.string().min(1).max(48);
const Desk = z.string().regex(/^[0-9A-Za-z][0-9A-Za-z_-]{1,31}$/);
const SeatId = z.string().regex(/^[0-9A-Za-z_-]{1,32}$/);

// ------------------------------------------------------------------ client → server

export const SubscribeSchema = z
  .object({
    v: V,
    type: z.literal('subscribe'),
    /** The last seq the client saw; absent or null for a fresh snapshot. */
    since: Seq.nullable().optional(),
    /** Seats only: the desk the seat answers for and its own seat id. */
    seat: z.object({ desk: Desk, seatId: SeatId }).strict().optional(),
  })
  .strict();

export const PingSchema = z
  .object({ v: V, type: z.literal('ping'), id: z.string().max(64).optional() })
  .strict();

export const ClientMessageSchema = z.discriminatedUnion('type', [SubscribeSchema, PingSchema]);
export type ClientMessage = z.infer<typeof ClientMessageSchema>;

// ------------------------------------------------------------------ server → client

/** A transfer as the feed shows it: the caller's number masked, no call legs. */
export const FeedTransferSchema = z.object({
  id: z.string(),
  state: z.enum(TRANSFER_STATES),
  direction: z.object({ from: z.string(), to: z.string() }),
  mode: z.enum(['blind', 'three-way']),
  priority: z.enum(['emergency', 'normal']),
  /** The ticket's request category (诉求归口类型) and urgency, when the stub could be read. */
  category: z.string().nullable(),
  urgency: z.string().nullable(),
  callerId: z.string().describe('masked: 138****8000, or "withheld"'),
  agent: z.object({ agentId: z.string(), seatId: z.string() }),
  targetDesk: z.string(),
  trunkIndex: z.number(),
  ticketId: z.string(),
  stubDeferred: z.boolean(),
  failure: z.object({ reason: z.string(), cause: z.string() }).nullable(),
  endedBy: z.enum(['citizen', 'agent', 'target']).nullable(),
  /**
   * The caller's nuisance mark (src/policy): flagged as malicious, threatening, drunk or repeated, or
   * calling again and again. Null without the policy, until its lookup answers, or when it failed.
   */
  nuisance: NuisanceMarkSchema.nullable(),
  version: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type FeedTransfer = z.infer<typeof FeedTransferSchema>;

export const SwitchStatusSchema = z.object({
  switchId: z.string(),
  kind: z.string(),
  desk: z.string(),
  state: z.enum(['connected', 'connecting', 'disconnected', 'auth-failed']),
  detail: z.string().optional(),
});

export const FailureSummarySchema = z.object({
  transferId: z.string(),
  at: z.string(),
  direction: z.object({ from: z.string(), to: z.string() }),
  mode: z.enum(['blind', 'three-way']),
  reason: z.string(),
  callerId: z.string(),
  category: z.string().nullable(),
});
export type FailureSummary = z.infer<typeof FailureSummarySchema>;

export const DayCountsSchema = z.object({
  /** The calendar day in the configured time zone, YYYY-MM-DD. */
  day: z.string(),
  requested: z.number(),
  connected: z.number(),
  failed: z.number(),
  cancelled: z.number(),
  /** Newest first, at most 20. */
  recentFailures: z.array(FailureSummarySchema),
});
export type DayCounts = z.infer<typeof DayCountsSchema>;

export const ScreenPopSchema = z.object({
  transferId: z.string(),
  desk: z.string(),
  /** The whole ticket stub, the caller's whole number included: for the receiving seat only. */
  stub: TicketStubSchema.nullable(),
  transfer: FeedTransferSchema,
});
export type ScreenPop = z.infer<typeof ScreenPopSchema>;

const Hello = z.object({
  v: V,
  type: z.literal('hello'),
  role: z.enum(['supervisor', 'seat']),
  principal: z.string(),
  instance: z.string(),
  heartbeatMs: z.number(),
  /** Desks this client sees; ['*'] for all. */
  desks: z.array(z.string()),
  at: z.string(),
});
const Snapshot = z.object({
  v: V,
  type: z.literal('snapshot'),
  /** Deltas follow from here; null when no event has been seen yet. */
  seq: Seq.nullable(),
  /** Supervisors: live transfers. Seats: empty (their ringing calls come as `pops`). */
  transfers: z.array(FeedTransferSchema),
  pops: z.array(ScreenPopSchema),
  switches: z.array(SwitchStatusSchema),
  stats: DayCountsSchema.nullable(),
  /** The store's health as last reported on the bus; null if nothing was reported since start. */
  store: z.object({ healthy: z.boolean(), detail: z.string(), at: z.string() }).nullable(),
  at: z.string(),
});
const Resync = z.object({
  v: V,
  type: z.literal('resync'),
  /**
   * too-old: what was missed is no longer kept; unknown-seq: not a seq of this feed; store-unavailable:
   * the history cannot be read now. A snapshot follows.
   */
  reason: z.enum(['too-old', 'unknown-seq', 'store-unavailable']),
  since: Seq,
});
const Resumed = z.object({
  v: V,
  type: z.literal('resumed'),
  since: Seq,
  replayed: z.number(),
  seq: Seq.nullable(),
});
const TransferDelta = z.object({
  v: V,
  type: z.literal('transfer'),
  seq: Seq,
  transfer: FeedTransferSchema,
  change: z.object({
    from: z.enum(TRANSFER_STATES).nullable(),
    to: z.enum(TRANSFER_STATES),
    event: z.string(),
    at: z.string(),
  }),
});
const SwitchDelta = z.object({
  v: V,
  type: z.literal('switch'),
  seq: Seq,
  status: SwitchStatusSchema,
  at: z.string(),
});
const StoreDelta = z.object({
  v: V,
  type: z.literal('store'),
  seq: Seq,
  healthy: z.boolean(),
  detail: z.string(),
  at: z.string(),
});
const Stats = z.object({ v: V, type: z.literal('stats'), stats: DayCountsSchema });
const PopMessage = z.object({ v: V, type: z.literal('screen-pop'), seq: Seq, pop: ScreenPopSchema });
const PopEnd = z.object({
  v: V,
  type: z.literal('screen-pop-end'),
  seq: Seq,
  transferId: z.string(),
  /** What became of the call: answered (by some seat of the desk), failed, cancelled … */
  state: z.enum(TRANSFER_STATES),
});
const Heartbeat = z.object({ v: V, type: z.literal('heartbeat'), seq: Seq.nullable(), at: z.string() });
const Pong = z.object({ v: V, type: z.literal('pong'), id: z.string().optional(), at: z.string() });
const ErrorMessage = z.object({ v: V, type: z.literal('error'), code: z.string(), message: z.string() });

export const ServerMessageSchema = z.discriminatedUnion('type', [
  Hello,
  Snapshot,
  Resync,
  Resumed,
  TransferDelta,
  SwitchDelta,
  StoreDelta,
  Stats,
  PopMessage,
  PopEnd,
  Heartbeat,
  Pong,
  ErrorMessage,
]);
export type ServerMessage = z.infer<typeof ServerMessageSchema>;
