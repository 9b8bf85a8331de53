// In-memory stores: the embedded default, so the service runs on a fresh machine without Redis.
// They keep the same contract as the Redis stores (one contract suite runs against both).
import type { TicketStub } from '../../domain/ticket-stub.js';
import { isTerminal, type Transfer } from '../../domain/transfer.js';
import { LIVE_LIST_CAP, transitionBusEvent, type Clock, type CreateOptions, type CreateResult, type EventBus, type Opening, type TicketStore, type TransferStep, type TransferStore, type TransitionRecord } from '../../ports.js';

/** How many puts between sweeps of expired stubs, so an idle stub does not stay in memory for ever. */
const SWEEP_EVERY = 1000;

export class MemoryTicketStore implements TicketStore {
  private readonly stubs = new Map<string, { stub: TicketStub; expiresAt: number }>();
  private putsSinceSweep = 0;
  constructor(private readonly clock: Clock) {}

  async put(stub: TicketStub, ttlSeconds: number): Promise<void> {
    const now = this.clock.now().getTime();
    this.stubs.delete(stub.ticketId); // re-inserted last, so the map stays in expiry order per TTL
    this.stubs.set(stub.ticketId, { stub, expiresAt: now + ttlSeconds * 1000 });
    this.putsSinceSweep += 1;
    if (this.putsSinceSweep >= SWEEP_EVERY) {
      this.putsSinceSweep = 0;
      for (const [id, entry] of this.stubs) if (entry.expiresAt <= now) this.stubs.delete(id);
    }
  }

  get size(): number {
    return this.stubs.size;
  }

  async get(ticketId: string): Promise<TicketStub | null> {
    const entry = this.stubs.get(ticketId);
    if (!entry) return null;
    if (entry.expiresAt <= this.clock.now().getTime()) {
      this.stubs.delete(ticketId);
      return null;
    }
    return entry.stub;
  }
}

const AUDIT_CAP = 200;
/** Ended transfers kept for reads; the oldest go first. Live ones are always kept. */
const ENDED_CAP = 10_000;

export class MemoryTransferStore implements TransferStore {
  private readonly transfers = new Map<string, Transfer>();
  private readonly audits = new Map<string, TransitionRecord[]>();
  private readonly idempotency = new Map<string, { transferId: string; fingerprint: string }>();
  private readonly callLocks = new Map<string, string>();
  private readonly ended: string[] = [];

  constructor(
    /** Where the stub of a new transfer goes, in the same step as the transfer. */
    private readonly tickets: TicketStore,
    /** Where each stored transition is published (the outbox of the TransferStore contract). */
    private readonly bus: EventBus,
    private readonly endedCap = ENDED_CAP,
  ) {}

  get size(): number {
    return this.transfers.size;
  }

  async create(opening: Opening, options: CreateOptions): Promise<CreateResult> {
    const transfer = opening.steps[opening.steps.length - 1]?.transfer;
    if (!transfer) throw new RangeError('an opening has at least the created step');
    if (options.lease) throw new Error('the in-memory store holds no leases: they are for instances sharing Redis');
    if (options.idempotencyKey !== null) {
      const seen = this.idempotency.get(options.idempotencyKey);
      if (seen) {
        return { outcome: 'replay', transferId: seen.transferId, sameRequest: seen.fingerprint === options.requestFingerprint };
      }
    }
    const lockKey = callLockKey(transfer);
    const holder = this.callLocks.get(lockKey);
    if (holder !== undefined) return { outcome: 'call-busy', transferId: holder };

    // Both are taken before the stub is written, so a press arriving meanwhile sees them; a stub that
    // cannot be stored gives them back and stores nothing.
    this.callLocks.set(lockKey, transfer.id);
    if (options.idempotencyKey !== null) {
      this.idempotency.set(options.idempotencyKey, { transferId: transfer.id, fingerprint: options.requestFingerprint });
    }
    try {
      await this.tickets.put(opening.stub, opening.stubTtlSeconds);
    } catch (err) {
      this.callLocks.delete(lockKey);
      if (options.idempotencyKey !== null) this.idempotency.delete(options.idempotencyKey);
      throw err;
    }
    // Keys are remembered for about as many transfers as are kept (Redis expires them by TTL instead).
    if (this.idempotency.size > this.endedCap * 2) {
      const oldest = this.idempotency.keys().next().value;
      if (oldest !== undefined) this.idempotency.delete(oldest);
    }
    this.transfers.set(transfer.id, transfer);
    this.audits.set(transfer.id, opening.steps.map((step) => step.record));
    for (const step of opening.steps) this.publish(step.transfer, step.record);
    return { outcome: 'created' };
  }

  async save(steps: readonly TransferStep[]): Promise<'saved' | 'stale'> {
    const first = steps[0];
    const transfer = steps[steps.length - 1]?.transfer;
    if (!first || !transfer) throw new RangeError('a save has at least one step');
    const stored = this.transfers.get(transfer.id);
    if (stored && stored.version >= first.transfer.version) return 'stale';
    this.transfers.set(transfer.id, transfer);
    const audit = this.audits.get(transfer.id) ?? [];
    audit.push(...steps.map((step) => step.record));
    if (audit.length > AUDIT_CAP) audit.splice(0, audit.length - AUDIT_CAP);
    this.audits.set(transfer.id, audit);
    const lockKey = callLockKey(transfer);
    if (isTerminal(transfer.state)) {
      if (this.callLocks.get(lockKey) === transfer.id) this.callLocks.delete(lockKey);
      this.forgetOldest(transfer.id);
    } else if (!stored) {
      this.callLocks.set(lockKey, transfer.id);
    }
    for (const step of steps) this.publish(step.transfer, step.record);
    return 'saved';
  }

  private publish(transfer: Transfer, record: TransitionRecord): void {
    // The in-memory bus delivers at once; only a listener's own bug could reject, and that is not the store's.
    this.bus.publish(transitionBusEvent(transfer, record)).catch(() => undefined);
  }

  async get(transferId: string): Promise<Transfer | null> {
    return this.transfers.get(transferId) ?? null;
  }

  private forgetOldest(endedId: string): void {
    this.ended.push(endedId);
    while (this.ended.length > this.endedCap) {
      const oldest = this.ended.shift()!;
      this.transfers.delete(oldest);
      this.audits.delete(oldest);
    }
  }

  async listLive(): Promise<Transfer[]> {
    return this.live().slice(0, LIVE_LIST_CAP);
  }

  async liveIds(): Promise<string[]> {
    return this.live().map((t) => t.id);
  }

  private live(): Transfer[] {
    return [...this.transfers.values()]
      .filter((t) => !isTerminal(t.state))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async auditTrail(transferId: string): Promise<TransitionRecord[]> {
    return [...(this.audits.get(transferId) ?? [])];
  }
}

function callLockKey(t: Transfer): string {
  return `${t.citizenLeg.switchId}\u0000${t.citizenLeg.legId}`;
}
