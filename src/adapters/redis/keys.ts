// Every Redis key this service writes, in one place. Each key that can grow has a TTL or a cap.
//
// | key                              | type   | holds                                  | bound              |
// |----------------------------------|--------|----------------------------------------|--------------------|
// | {ns}:ticket:{ticketId}           | string | ticket stub JSON                       | TTL ticketTtl      |
// | {ns}:transfer:{id}               | hash   | version, base, progress, routing (see redis-stores.ts) | TTL transferTtl, again at the end |
// | {ns}:transfer:{id}:audit         | list   | transition records JSON                | cap 200, TTL as above |
// | {ns}:idem:{key}                  | string | {transferId, fingerprint}              | TTL idempotencyTtl |
// | {ns}:call:{switchId}:{legId}     | string | id of the transfer moving that call    | TTL, DEL at end    |
// | {ns}:live                        | zset   | live transfer ids by creation time     | ZREM at end, trim  |
// | {ns}:lease:transfer:{id}         | string | the instance driving the transfer      | TTL, renewed       |
// | {ns}:feed:log                    | stream | bus events in one order (the feed seq); the transfer scripts append each stored transition | MAXLEN ~ feed.historySize |
// | {ns}:feed:day:{date}:{count}     | set    | transfer ids counted that day          | TTL 3 days         |
// | {ns}:feed:day:{date}:failures    | zset   | masked failure summaries by time       | TTL 3 days, cap 200 |
export interface RedisKeys {
  ticket(ticketId: string): string;
  transfer(transferId: string): string;
  audit(transferId: string): string;
  idempotency(key: string): string;
  callLock(switchId: string, legId: string): string;
  /** Prefix of the lease keys; the transfer id follows. */
  readonly leasePrefix: string;
  readonly live: string;
  readonly feed: string;
  readonly feedLog: string;
  feedDay(date: string, what: string): string;
}

export function redisKeys(namespace: string): RedisKeys {
  return {
    ticket: (id) => `${namespace}:ticket:${id}`,
    transfer: (id) => `${namespace}:transfer:${id}`,
    audit: (id) => `${namespace}:transfer:${id}:audit`,
    idempotency: (key) => `${namespace}:idem:${key}`,
    callLock: (switchId, legId) => `${namespace}:call:${switchId}:${legId}`,
    leasePrefix: `${namespace}:lease:transfer:`,
    live: `${namespace}:live`,
    feed: `${namespace}:feed`,
    feedLog: `${namespace}:feed:log`,
    feedDay: (date, what) => `${namespace}:feed:day:${date}:${what}`,
  };
}

export const AUDIT_CAP = 200;

// Keys of the linkage policy (src/policy), same namespace:
//
// | key                              | type   | holds                                  | bound              |
// |----------------------------------|--------|----------------------------------------|--------------------|
// | {ns}:nuisance:flag:{hash}        | string | nuisance flag JSON (number as HMAC)    | PX to its expiry   |
// | {ns}:nuisance:flags              | zset   | flagged hashes by expiry time          | trimmed, cap 10000 |
// | {ns}:nuisance:calls:{hash}       | zset   | call times in the repeat window        | window, cap 1000   |
export interface PolicyRedisKeys {
  nuisanceFlag(numberHash: string): string;
  nuisanceCalls(numberHash: string): string;
  readonly nuisanceFlags: string;
}

export function policyRedisKeys(namespace: string): PolicyRedisKeys {
  return {
    nuisanceFlag: (hash) => `${namespace}:nuisance:flag:${hash}`,
    nuisanceCalls: (hash) => `${namespace}:nuisance:calls:${hash}`,
    nuisanceFlags: `${namespace}:nuisance:flags`,
  };
}
