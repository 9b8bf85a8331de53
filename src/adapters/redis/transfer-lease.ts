// Which service instance drives a transfer. With several instances on one FreeSWITCH every instance
// sees every event, so exactly one of them may act on a transfer: the holder of its lease. The lease is
// a Redis key with a time to live, taken when nobody (or this instance) holds it, renewed and released
// only by its holder (a Lua compare-and-set, so an instance that paused past its TTL cannot renew or
// delete a lease another instance has since taken). When the holder dies the key expires; another
// instance takes the lease and settles the transfer from the switch's channel state
// (CallControl.reconcile).
//
// Key: <prefix><transferId> (default "hl:lease:transfer:<transferId>"), value: the holder's instance
// id, always with a TTL, so the key space cannot grow without bound.
import type { Redis } from 'ioredis';
import type { LeaseClaim, TransferLease } from '../../ports.js';


export interface RedisTransferLeaseOptions {
  readonly holderId: string;
  readonly ttlMs: number;
  readonly keyPrefix?: string;
}

// Takes a lease nobody holds, or one this instance already holds (a write whose reply was lost took it).
const ACQUIRE = `
local holder = redis.call('GET', KEYS[1])
if holder == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
// Renews many leases in one call: one round trip per renewal round, not one per live transfer.
const RENEW_MANY = `
local renewed = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then renewed[i] = redis.call('PEXPIRE', key, ARGV[2]) else renewed[i] = 0 end
end
return renewed
`;
// Which of these lease keys are missing: 1 for a key nobody holds, 0 for a held one.
const UNHELD_MANY = `
local unheld = {}
for i, key in ipairs(KEYS) do unheld[i] = 1 - redis.call('EXISTS', key) end
return unheld
`;
/**
 * Leases renewed (or looked at) per script call. Small, so one call holds Redis for a tenth of a
 * millisecond and a transfer's own command is never queued long behind one: 100 a call took 1.2-1.7
 * ms of Redis each during an append-only-file rewrite, and were the only commands its slow log held.
 */
const RENEW_CHUNK = 25;
/** How often the kept leases are looked at for ones due; at most this often a renewal is late. */
const RENEW_TICK_MS = 100;

interface LeaseScripts {
  hotlineAcquireLease(key: string, holder: string, ttlMs: string): Promise<number>;
  hotlineRenewLease(key: string, holder: string, ttlMs: string): Promise<number>;
  hotlineReleaseLease(key: string, holder: string): Promise<number>;
  hotlineRenewLeases(numberOfKeys: number, ...keysThenArgs: string[]): Promise<number[]>;
  hotlineUnheldLeases(numberOfKeys: number, ...keys: string[]): Promise<number[]>;
}

interface Kept {
  readonly onLost: (reason: string) => void;
  lastRenewed: number;
}

export class RedisTransferLease implements TransferLease {
  readonly holderId: string;
  private readonly ttlMs: number;
  private readonly prefix: string;
  private readonly scripts: LeaseScripts;
  /**
   * The leases this instance keeps, least recently renewed first (a renewed one moves to the end).
   * Each is renewed ttl/3 after its last renewal, so renewals are spread as the transfers began rather
   * than sent as one round of every live transfer at once.
   */
  private readonly kept = new Map<string, Kept>();
  private readonly renewEveryMs: number;
  private renewTimer: NodeJS.Timeout | null = null;
  private renewing = false;

  constructor(
    private readonly redis: Redis,
    options: RedisTransferLeaseOptions,
  ) {
    if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(options.holderId)) throw new RangeError('holderId: 1-128 letters, digits, _ . : -');
    if (!Number.isInteger(options.ttlMs) || options.ttlMs < 100) throw new RangeError('ttlMs must be a whole number of at least 100');
    this.holderId = options.holderId;
    this.ttlMs = options.ttlMs;
    this.prefix = options.keyPrefix ?? 'hl:lease:transfer:';
    this.renewEveryMs = Math.max(10, Math.floor(this.ttlMs / 3));
    if (!('hotlineRenewLeases' in redis)) {
      redis.defineCommand('hotlineAcquireLease', { numberOfKeys: 1, lua: ACQUIRE });
      redis.defineCommand('hotlineRenewLease', { numberOfKeys: 1, lua: RENEW });
      redis.defineCommand('hotlineReleaseLease', { numberOfKeys: 1, lua: RELEASE });
      redis.defineCommand('hotlineRenewLeases', { lua: RENEW_MANY });
      redis.defineCommand('hotlineUnheldLeases', { lua: UNHELD_MANY });
    }
    this.scripts = redis as unknown as LeaseScripts;
  }

  key(transferId: string): string {
    return `${this.prefix}${transferId}`;
  }

  claim(transferId: string): LeaseClaim {
    return { key: this.key(transferId), holderId: this.holderId, ttlMs: this.ttlMs };
  }

  async acquire(transferId: string): Promise<boolean> {
    return (await this.scripts.hotlineAcquireLease(this.key(transferId), this.holderId, String(this.ttlMs))) === 1;
  }

  async renew(transferId: string): Promise<boolean> {
    return (await this.scripts.hotlineRenewLease(this.key(transferId), this.holderId, String(this.ttlMs))) === 1;
  }

  async release(transferId: string): Promise<boolean> {
    return (await this.scripts.hotlineReleaseLease(this.key(transferId), this.holderId)) === 1;
  }

  async holder(transferId: string): Promise<string | null> {
    return this.redis.get(this.key(transferId));
  }

  async unheld(transferIds: readonly string[]): Promise<string[]> {
    const unheld: string[] = [];
    for (let start = 0; start < transferIds.length; start += RENEW_CHUNK) {
      const chunk = transferIds.slice(start, start + RENEW_CHUNK);
      const replies = await this.scripts.hotlineUnheldLeases(chunk.length, ...chunk.map((id) => this.key(id)));
      chunk.forEach((id, i) => {
        if (replies[i] === 1) unheld.push(id);
      });
    }
    return unheld;
  }

  keep(transferId: string, onLost: (reason: string) => void): () => void {
    const entry: Kept = { onLost, lastRenewed: Date.now() };
    this.kept.set(transferId, entry);
    if (!this.renewTimer) {
      const tickMs = Math.max(10, Math.min(RENEW_TICK_MS, Math.floor(this.ttlMs / 10)));
      this.renewTimer = setInterval(() => void this.renewDue(), tickMs);
      this.renewTimer.unref();
    }
    return () => this.forget(transferId, entry);
  }

  private forget(transferId: string, entry: Kept): void {
    if (this.kept.get(transferId) === entry) this.kept.delete(transferId);
    if (this.kept.size === 0 && this.renewTimer) {
      clearInterval(this.renewTimer);
      this.renewTimer = null;
    }
  }

  private lost(transferId: string, entry: Kept, reason: string): void {
    if (this.kept.get(transferId) !== entry) return; // stopped meanwhile: nobody is told
    this.forget(transferId, entry);
    entry.onLost(reason);
  }

  /** Renews the kept leases due for it, a few per script call, one call at a time. */
  private async renewDue(): Promise<void> {
    if (this.renewing) return; // a slow round is still out; the next tick starts another
    this.renewing = true;
    try {
      const dueBefore = Date.now() - this.renewEveryMs;
      const due: [string, Kept][] = [];
      for (const kept of this.kept) {
        if (kept[1].lastRenewed > dueBefore) break; // the rest were renewed later still
        due.push(kept);
      }
      for (let start = 0; start < due.length; start += RENEW_CHUNK) {
        const chunk = due.slice(start, start + RENEW_CHUNK);
        try {
          const replies = await this.scripts.hotlineRenewLeases(
            chunk.length,
            ...chunk.map(([transferId]) => this.key(transferId)),
            this.holderId,
            String(this.ttlMs),
          );
          const now = Date.now();
          chunk.forEach(([transferId, entry], i) => {
            if (replies[i] !== 1) {
              this.lost(transferId, entry, 'the lease is held by another instance or has expired');
            } else if (this.kept.get(transferId) === entry) {
              entry.lastRenewed = now;
              this.kept.delete(transferId);
              this.kept.set(transferId, entry);
            }
          });
        } catch (err) {
          // Not renewed: these stay first in line, and are tried again next tick.
          const now = Date.now();
          for (const [transferId, entry] of chunk) {
            if (now - entry.lastRenewed >= this.ttlMs) {
              this.lost(transferId, entry, `the lease could not be renewed: ${(err as Error).message}`);
            }
          }
        }
      }
    } finally {
      this.renewing = false;
    }
  }
}
