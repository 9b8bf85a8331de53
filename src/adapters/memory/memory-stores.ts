// In-memory stores: the embedded default, so the service runs on a fresh machine without Redis.
// They keep the same contract as the Redis stores (one contract suite runs against both).
import type { TicketStub } from '../../domain/ticket-stub.js';
import { isTerminal, type Transfer } from '../../domain/transfer.js';
import type { Clock, CreateOptions, CreateResult, TicketStore, TransferStore, TransitionRecord } from '../../ports.js';

export class MemoryTicketStore implements TicketStore {
  private readonly stubs = new Map<string, { stub: TicketStub; expiresAt: number }>();
  constructor(private readonly clock: Clock) {}

  async put(stub: TicketStub, ttlSeconds: number): Promise<void> {
    this.stubs.set(stub.ticketId, { stub, expiresAt: this.clock.now().getTime() + ttlSeconds * 1000 });
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

export class MemoryTransferStore implements TransferStore {
  private readonly transfers = new Map<string, Transfer>();
  private readonly audits = new Map<string, TransitionRecord[]>();
  private readonly idempotency = new Map<string, { transferId: string; fingerprint: string }>();
  private readonly callLocks = new Map<string, string>();

  async create(transfer: Transfer, record: TransitionRecord, options: CreateOptions): Promise<CreateResult> {
    if (options.idempotencyKey !== null) {
      const seen = this.idempotency.get(options.idempotencyKey);
      if (seen) {
        return { outcome: 'replay', transferId: seen.transferId, sameRequest: seen.fingerprint === options.requestFingerprint };
      }
    }
    const lockKey = callLockKey(transfer);
    const holder = this.callLocks.get(lockKey);
    if (holder !== undefined) return { outcome: 'call-busy', transferId: holder };

    if (options.idempotencyKey !== null) {
      this.idempotency.set(options.idempotencyKey, { transferId: transfer.id, fingerprint: options.requestFingerprint });
    }
    this.callLocks.set(lockKey, transfer.id);
    this.transfers.set(transfer.id, transfer);
    this.audits.set(transfer.id, [record]);
    return { outcome: 'created' };
  }

  async save(transfer: Transfer, record: TransitionRecord): Promise<'saved' | 'stale'> {
    const stored = this.transfers.get(transfer.id);
    if (stored && stored.version >= transfer.version) return 'stale';
    this.transfers.set(transfer.id, transfer);
    const audit = this.audits.get(transfer.id) ?? [];
    audit.push(record);
    if (audit.length > AUDIT_CAP) audit.shift();
    this.audits.set(transfer.id, audit);
    const lockKey = callLockKey(transfer);
    if (isTerminal(transfer.state)) {
      if (this.callLocks.get(lockKey) === transfer.id) this.callLocks.delete(lockKey);
    } else if (!stored) {
      this.callLocks.set(lockKey, transfer.id);
    }
    return 'saved';
  }

  async get(transferId: string): Promise<Transfer | null> {
    return this.transfers.get(transferId) ?? null;
  }

  async listLive(): Promise<Transfer[]> {
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
