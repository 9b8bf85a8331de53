// Ticket and transfer stores on Redis. Multi-key changes run as Lua scripts so each is atomic: a
// double press arriving at the same instant on two service instances still makes one transfer.
import type { Redis } from 'ioredis';
import { TicketStubSchema, type TicketStub } from '../../domain/ticket-stub.js';
import { isTerminal, type Transfer } from '../../domain/transfer.js';
import { LIVE_LIST_CAP, type CreateOptions, type CreateResult, type Opening, type TicketStore, type TransferStep, type TransferStore, type TransitionRecord } from '../../ports.js';
import { TRANSITION_FIELD, transitionEntryValue } from './feed-stream-entry.js';
import { AUDIT_CAP, type RedisKeys } from './keys.js';

export class RedisTicketStore implements TicketStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async put(stub: TicketStub, ttlSeconds: number): Promise<void> {
    // One SET of the whole JSON: a reader sees the old stub, the new one, or none — never a part.
    await this.redis.set(this.keys.ticket(stub.ticketId), JSON.stringify(stub), 'EX', ttlSeconds);
  }

  async get(ticketId: string): Promise<TicketStub | null> {
    const raw = await this.redis.get(this.keys.ticket(ticketId));
    if (raw === null) return null;
    return TicketStubSchema.parse(JSON.parse(raw));
  }
}

// A transfer is stored as a hash of four fields, so that a transition writes what it changes and not
// the whole transfer: Redis' append-only file (and any replica) receives each write in full, and the
// whole 1 KB transfer rewritten at each of its six or so transitions was the largest part of it.
//   version   the transfer's version (a number), for the stale-write check
//   base      JSON of the fields no transition changes: parties, legs, target, caller ID, ticket
//   progress  JSON of the fields every transition may change: state, times, trunk, failure, who ended it
//   routing   JSON of the routing decision (absent without a policy); one transition amends it
// A field is written only when its JSON differs from the stored one, so what the split guesses about
// what changes is an economy, never a loss. The earlier form, the whole transfer as one JSON string,
// is still read, and a save of one turns it into a hash.
//
// The TTL is set when the transfer is stored and again when it ends: an ended transfer is kept
// transfers.ttlSeconds after its end (one EXPIRE per transfer and not per transition).
//
// A transition's audit record is stored without its transferId, which the list's key already names
// (eight records a transfer, each appended whole to Redis' append-only file); records of earlier versions
// carry it, and both are read.
//
// Both scripts end by appending each stored transition to the feed stream, as RedisStreamEventBus
// writes it (see feed-stream-entry.ts: the transfer summarised, positionally): the transfer store's
// outbox (see TransferStore).
const APPEND_EVENT = `
local function appendEvent(stream, maxLength, entry)
  redis.call('XADD', stream, 'MAXLEN', '~', maxLength, '*', '${TRANSITION_FIELD}', entry)
end
`;

// KEYS: idem, callLock, transfer, audit, live, ticket, feed stream, lease
// ARGV: hasIdem, idemValueJson, transferId, ttl, idemTtl, score, stubJson, stubTtl, feedMaxLength,
//       lease holder ('' for none), lease ttl ms, then the transfer as of its last step: version, base,
//       progress, routing ('' for none), then per step, oldest first: record, feed entry
const CREATE_SCRIPT = `${APPEND_EVENT}
if ARGV[1] == '1' then
  local seen = redis.call('GET', KEYS[1])
  if seen then return {'replay', seen} end
end
local holder = redis.call('GET', KEYS[2])
if holder then return {'call-busy', holder} end
redis.call('SET', KEYS[6], ARGV[7], 'EX', ARGV[8])
if ARGV[1] == '1' then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[5]) end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
redis.call('DEL', KEYS[3])
if ARGV[15] == '' then
  redis.call('HSET', KEYS[3], 'version', ARGV[12], 'base', ARGV[13], 'progress', ARGV[14])
else
  redis.call('HSET', KEYS[3], 'version', ARGV[12], 'base', ARGV[13], 'progress', ARGV[14], 'routing', ARGV[15])
end
redis.call('EXPIRE', KEYS[3], ARGV[4])
if ARGV[10] ~= '' then redis.call('SET', KEYS[8], ARGV[10], 'PX', ARGV[11]) end
redis.call('DEL', KEYS[4])
for i = 16, #ARGV, 2 do
  redis.call('RPUSH', KEYS[4], ARGV[i])
  appendEvent(KEYS[7], ARGV[9], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[4], ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[3])
return {'created', ARGV[3]}
`;

// KEYS: transfer, audit, callLock, live, feed stream
// ARGV: transferId, the first step's version (the stale check), then the transfer as of the last step:
//       version, base, progress, routing ('' for none); ttl, terminal, score, auditCap, feedMaxLength,
//       then per step, oldest first: record, feed entry
const SAVE_SCRIPT = `${APPEND_EVENT}
local stored = redis.pcall('HMGET', KEYS[1], 'version', 'base', 'progress', 'routing')
local converted = false
if stored['err'] then
  -- The earlier form, one JSON string: compared by its version, then replaced by the hash.
  local version = tonumber(cjson.decode(redis.call('GET', KEYS[1]))['version'])
  if version >= tonumber(ARGV[2]) then return 'stale' end
  redis.call('DEL', KEYS[1])
  stored = {tostring(version), false, false, false}
  converted = true
elseif stored[1] and tonumber(stored[1]) >= tonumber(ARGV[2]) then
  return 'stale'
end
local fields = {'version', ARGV[3]}
local names = {'base', 'progress', 'routing'}
for i = 1, 3 do
  local value = ARGV[i + 3]
  if value ~= '' and value ~= stored[i + 1] then
    fields[#fields + 1] = names[i]
    fields[#fields + 1] = value
  end
end
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[6] == '' and stored[4] then redis.call('HDEL', KEYS[1], 'routing') end
for i = 12, #ARGV, 2 do redis.call('RPUSH', KEYS[2], ARGV[i]) end
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[10]), -1)
local isNew = not stored[1]
if ARGV[8] == '1' or isNew or converted then
  redis.call('EXPIRE', KEYS[1], ARGV[7])
  redis.call('EXPIRE', KEYS[2], ARGV[7])
end
if ARGV[8] == '1' then
  if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
  redis.call('ZREM', KEYS[4], ARGV[1])
elseif isNew then
  redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[7], 'NX')
  redis.call('ZADD', KEYS[4], ARGV[9], ARGV[1])
end
for i = 13, #ARGV, 2 do appendEvent(KEYS[5], ARGV[11], ARGV[i]) end
return 'saved'
`;

// KEYS: live set; ARGV: the transfer key prefix, the first rank, how many. One page of the live set,
// oldest first; ids whose transfer has expired without ending (its instance crashed) are dropped from
// the set as they are found. Returns how many were dropped, then the live ids of the page.
const LIVE_IDS_PAGE_SCRIPT = `
local ids = redis.call('ZRANGE', KEYS[1], ARGV[2], tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1)
local page = {0}
for _, id in ipairs(ids) do
  if redis.call('EXISTS', ARGV[1] .. id) == 1 then page[#page + 1] = id
  else redis.call('ZREM', KEYS[1], id); page[1] = page[1] + 1 end
end
return page
`;
/**
 * Live ids looked at per script call: a walk of thousands of live transfers is many short calls, so
 * the transfers' own commands are never held behind one long one.
 */
const LIVE_IDS_PAGE = 100;

export interface RedisTransferStoreOptions {
  readonly transferTtlSeconds: number;
  readonly idempotencyTtlSeconds: number;
  /** The feed stream each stored transition is appended to, and its MAXLEN ~ (RedisStreamEventBus's). */
  readonly feedLog: { readonly key: string; readonly maxLength: number };
}

/** The scripts as commands: ioredis sends EVALSHA and loads the script only when Redis lacks it. */
interface TransferScripts {
  hotlineCreateTransfer(...args: (string | number | Buffer)[]): Promise<[string, string]>;
  hotlineSaveTransfer(...args: (string | number | Buffer)[]): Promise<string>;
  hotlineLiveIdsPage(live: string, transferKeyPrefix: string, start: number, count: number): Promise<[number, ...string[]]>;
}

export class RedisTransferStore implements TransferStore {
  private readonly scripts: TransferScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly options: RedisTransferStoreOptions,
  ) {
    if (!('hotlineCreateTransfer' in redis)) {
      redis.defineCommand('hotlineCreateTransfer', { numberOfKeys: 8, lua: CREATE_SCRIPT });
      redis.defineCommand('hotlineSaveTransfer', { numberOfKeys: 5, lua: SAVE_SCRIPT });
      redis.defineCommand('hotlineLiveIdsPage', { numberOfKeys: 1, lua: LIVE_IDS_PAGE_SCRIPT });
    }
    this.scripts = redis as unknown as TransferScripts;
  }

  async create(opening: Opening, options: CreateOptions): Promise<CreateResult> {
    const k = this.keys;
    const { stub, steps } = opening;
    const transfer = steps[steps.length - 1]?.transfer;
    if (!transfer) throw new RangeError('an opening has at least the created step');
    const reply = await this.scripts.hotlineCreateTransfer(
      k.idempotency(options.idempotencyKey ?? ''),
      k.callLock(transfer.citizenLeg.switchId, transfer.citizenLeg.legId),
      k.transfer(transfer.id),
      k.audit(transfer.id),
      k.live,
      k.ticket(stub.ticketId),
      this.options.feedLog.key,
      // Without a claim the key is named but never written.
      options.lease?.key ?? `${k.leasePrefix}${transfer.id}`,
      options.idempotencyKey === null ? '0' : '1',
      JSON.stringify({ transferId: transfer.id, fingerprint: options.requestFingerprint }),
      transfer.id,
      this.options.transferTtlSeconds,
      this.options.idempotencyTtlSeconds,
      Date.parse(transfer.createdAt),
      jsonBytes(stub),
      opening.stubTtlSeconds,
      this.options.feedLog.maxLength,
      options.lease?.holderId ?? '',
      options.lease?.ttlMs ?? 0,
      ...transferFields(transfer),
      ...steps.flatMap((step) => [auditEntry(step.record), feedEntry(step.transfer, step.record)]),
    );
    const [outcome, value] = reply;
    if (outcome === 'replay') {
      const seen = JSON.parse(value) as { transferId: string; fingerprint: string };
      return { outcome: 'replay', transferId: seen.transferId, sameRequest: seen.fingerprint === options.requestFingerprint };
    }
    if (outcome === 'call-busy') return { outcome: 'call-busy', transferId: value };
    return { outcome: 'created' };
  }

  async save(steps: readonly TransferStep[]): Promise<'saved' | 'stale'> {
    const k = this.keys;
    const first = steps[0];
    const transfer = steps[steps.length - 1]?.transfer;
    if (!first || !transfer) throw new RangeError('a save has at least one step');
    const reply = await this.scripts.hotlineSaveTransfer(
      k.transfer(transfer.id),
      k.audit(transfer.id),
      k.callLock(transfer.citizenLeg.switchId, transfer.citizenLeg.legId),
      k.live,
      this.options.feedLog.key,
      transfer.id,
      first.transfer.version,
      ...transferFields(transfer),
      this.options.transferTtlSeconds,
      isTerminal(transfer.state) ? '1' : '0',
      Date.parse(transfer.createdAt),
      AUDIT_CAP,
      this.options.feedLog.maxLength,
      ...steps.flatMap((step) => [auditEntry(step.record), feedEntry(step.transfer, step.record)]),
    );
    return reply === 'stale' ? 'stale' : 'saved';
  }

  async get(transferId: string): Promise<Transfer | null> {
    const key = this.keys.transfer(transferId);
    try {
      return transferOf(await this.redis.hmget(key, ...STORED_FIELDS));
    } catch (err) {
      if (!isWrongType(err)) throw err;
      return this.getEarlierForm(key);
    }
  }

  /** A transfer stored in the earlier form, one JSON string (or gone since: null). */
  private async getEarlierForm(key: string): Promise<Transfer | null> {
    const raw = await this.redis.get(key);
    return raw === null ? null : (JSON.parse(raw) as Transfer);
  }

  async liveIds(): Promise<string[]> {
    const ids: string[] = [];
    for (let start = 0; ; ) {
      const [dropped, ...page] = await this.scripts.hotlineLiveIdsPage(this.keys.live, this.keys.transfer(''), start, LIVE_IDS_PAGE);
      ids.push(...page);
      if (page.length + dropped < LIVE_IDS_PAGE) return ids;
      // What the page dropped moved every later id down by as many ranks. (An id another instance
      // ends meanwhile shifts them too, and one may be skipped: the next walk finds it.)
      start += page.length;
    }
  }

  async listLive(): Promise<Transfer[]> {
    // Ids whose transfer expired without ending (a crash) are dropped from the set as they are found.
    const ids = await this.redis.zrange(this.keys.live, '0', String(LIVE_LIST_CAP - 1));
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.keys.transfer(id), ...STORED_FIELDS);
    const replies = (await pipeline.exec()) ?? [];
    const live: Transfer[] = [];
    const gone: string[] = [];
    for (const [i, [err, fields]] of replies.entries()) {
      const id = ids[i] as string;
      if (err && !isWrongType(err)) throw err;
      const transfer = err ? await this.getEarlierForm(this.keys.transfer(id)) : transferOf(fields as (string | null)[]);
      if (transfer === null) gone.push(id);
      else live.push(transfer);
    }
    if (gone.length > 0) await this.redis.zrem(this.keys.live, ...gone);
    return live.filter((t) => !isTerminal(t.state));
  }

  async auditTrail(transferId: string): Promise<TransitionRecord[]> {
    const raws = await this.redis.lrange(this.keys.audit(transferId), 0, -1);
    return raws.map((raw) => ({ transferId, ...(JSON.parse(raw) as Omit<TransitionRecord, 'transferId'>) }));
  }
}

/**
 * A large argument as UTF-8 bytes. Given any Buffer, ioredis writes the command into one buffer outside
 * the JavaScript heap; given strings only, it concatenates the whole command into a string (two bytes a
 * character once the stub's Chinese is in it) and the socket flattens a second copy, all of it garbage
 * for the young collector. Redis receives the same bytes either way.
 */
function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** A transition's audit record as the list holds it: without the transferId its key names. */
function auditEntry({ transferId: _named, ...record }: TransitionRecord): Buffer {
  return jsonBytes(record);
}

/** A stored transition as the scripts append it to the feed stream (see feed-stream-entry.ts). */
function feedEntry(transfer: Transfer, record: TransitionRecord): Buffer {
  return Buffer.from(transitionEntryValue(transfer, record), 'utf8');
}

/** The hash's fields, in the order transferOf reads them. */
const STORED_FIELDS = ['version', 'base', 'progress', 'routing'] as const;

/** The transfer as the hash's fields (see the scripts): version, base, progress, routing ('' for none). */
function transferFields(transfer: Transfer): [number, Buffer, Buffer, Buffer | ''] {
  const { version, state, updatedAt, stubDeferred, trunkIndex, targetLegId, failure, endedBy, routing, ...base } = transfer;
  const progress = { state, updatedAt, stubDeferred, trunkIndex, targetLegId, failure, endedBy };
  return [version, jsonBytes(base), jsonBytes(progress), routing === undefined ? '' : jsonBytes(routing)];
}

/** The transfer from the hash's fields as STORED_FIELDS names them; null when there is none. */
function transferOf([version, base, progress, routing]: (string | null)[]): Transfer | null {
  if (version == null || base == null || progress == null) return null;
  const transfer = { ...JSON.parse(base), ...JSON.parse(progress), version: Number(version) } as Transfer;
  return routing == null ? transfer : { ...transfer, routing: JSON.parse(routing) as Transfer['routing'] };
}

function isWrongType(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('WRONGTYPE');
}
