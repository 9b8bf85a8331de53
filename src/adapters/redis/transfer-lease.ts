// Which service instance drives a transfer. With several instances on one FreeSWITCH every instance
// sees every event, so exactly one of them may act on a transfer: the holder of its lease. The lease is
// a Redis key with a time to live, taken with SET NX PX, renewed and released only by its holder (a Lua
// compare-and-set, so an instance that paused past its TTL cannot renew or delete a lease another
// instance has since taken). When the holder dies the key expires; another instance takes the lease
// and settles the transfer from the switch's channel state (CallControl.reconcile).
//
// Key: <prefix><transferId> (default "hl:lease:transfer:<transferId>"), value: the holder's instance
// id, always with a TTL, so the key space cannot grow without bound.
import type { Redis } from 'ioredis';
import type { TransferLease } from '../../ports.js';


export interface RedisTransferLeaseOptions {
  readonly holderId: string;
  readonly ttlMs: number;
  readonly keyPrefix?: string;
}

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export class RedisTransferLease implements TransferLease {
  readonly holderId: string;
  private readonly ttlMs: number;
  private readonly prefix: string;

  constructor(
    private readonly redis: Redis,
    options: RedisTransferLeaseOptions,
  ) {
    if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(options.holderId)) throw new RangeError('holderId: 1-128 letters, digits, _ . : -');
    if (!Number.isInteger(options.ttlMs) || options.ttlMs < 100) throw new RangeError('ttlMs must be a whole number of at least 100');
    this.holderId = options.holderId;
    this.ttlMs = options.ttlMs;
    this.prefix = options.keyPrefix ?? 'hl:lease:transfer:';
  }

  key(transferId: string): string {
    return `${this.prefix}${transferId}`;
  }

  async acquire(transferId: string): Promise<boolean> {
    const reply = await this.redis.set(this.key(transferId), this.holderId, 'PX', this.ttlMs, 'NX');
    return reply === 'OK';
  }

  async renew(transferId: string): Promise<boolean> {
    const reply = await this.redis.eval(RENEW, 1, this.key(transferId), this.holderId, String(this.ttlMs));
    return reply === 1;
  }

  async release(transferId: string): Promise<boolean> {
    const reply = await this.redis.eval(RELEASE, 1, this.key(transferId), this.holderId);
    return reply === 1;
  }

  async holder(transferId: string): Promise<string | null> {
    return this.redis.get(this.key(transferId));
  }

  keep(transferId: string, onLost: (reason: string) => void): () => void {
    let stopped = false;
    let lastRenewed = Date.now();
    const lost = (reason: string) => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      onLost(reason);
    };
    const timer = setInterval(() => {
      this.renew(transferId).then(
        (held) => {
          if (held) lastRenewed = Date.now();
          else lost('the lease is held by another instance or has expired');
        },
        (err: unknown) => {
          // Redis unreachable: the lease may still be ours until its TTL runs out, not after.
          if (Date.now() - lastRenewed >= this.ttlMs) lost(`the lease could not be renewed: ${(err as Error).message}`);
        },
      );
    }, Math.max(10, Math.floor(this.ttlMs / 3)));
    timer.unref();
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }
}
