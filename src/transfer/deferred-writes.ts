// Writes the store could not take, kept in order and retried until it takes them. This is how an
// emergency transfer goes out with Redis down and how a live call survives a Redis restart: the gap is
// recorded (stubDeferred, a 'store' bus event) and closed when the store is back.
import type { Logger } from 'pino';
import type { TicketStub } from '../domain/ticket-stub.js';
import type { Transfer } from '../domain/transfer.js';
import type { TicketStore, TransferStep, TransferStore, TransitionRecord } from '../ports.js';

interface Options {
  readonly tickets: TicketStore;
  readonly transfers: TransferStore;
  readonly ticketTtlSeconds: number;
  readonly retryMs: number;
  readonly logger: Logger;
  readonly onStoreHealth: (healthy: boolean, detail: string) => void;
  /** Runs before a transfer the store has never seen is first written (its 'created' record). */
  readonly beforeFirstWrite?: (transferId: string) => Promise<void>;
}

export class DeferredWrites {
  private readonly stubs = new Map<string, TicketStub>();
  /** Per transfer, the versions not yet written, oldest first. */
  private readonly transferWrites = new Map<string, TransferStep[]>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;

  constructor(private readonly options: Options) {}

  deferStub(stub: TicketStub): void {
    this.stubs.set(stub.ticketId, stub);
    this.schedule('ticket stub deferred');
  }

  deferTransfer(transfer: Transfer, record: TransitionRecord): void {
    const queue = this.transferWrites.get(transfer.id) ?? [];
    queue.push({ transfer, record });
    this.transferWrites.set(transfer.id, queue);
    this.schedule('transfer write deferred');
  }

  holds(transferId: string): boolean {
    return this.transferWrites.has(transferId);
  }

  stub(ticketId: string): TicketStub | undefined {
    return this.stubs.get(ticketId);
  }

  transfer(transferId: string): Transfer | undefined {
    return this.transferWrites.get(transferId)?.at(-1)?.transfer;
  }

  counts(): { transfers: number; stubs: number } {
    return { transfers: this.transferWrites.size, stubs: this.stubs.size };
  }

  private schedule(reason: string): void {
    if (this.timer) return;
    this.options.onStoreHealth(false, reason);
    this.timer = setInterval(() => void this.flush(), this.options.retryMs);
    this.timer.unref();
  }

  /** Tries every pending write once, in order; stops at the first the store still refuses. */
  flush(): Promise<void> {
    this.flushing ??= this.flushOnce().finally(() => (this.flushing = null));
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    try {
      for (const [ticketId, stub] of this.stubs) {
        await this.options.tickets.put(stub, this.options.ticketTtlSeconds);
        this.stubs.delete(ticketId);
        this.options.logger.info({ ticketId }, 'deferred ticket stub stored');
      }
      for (const [transferId, queue] of this.transferWrites) {
        while (queue.length > 0) {
          const next = queue[0]!;
          if (next.record.event === 'created') await this.options.beforeFirstWrite?.(transferId);
          await this.options.transfers.save([next]);
          queue.shift();
        }
        this.transferWrites.delete(transferId);
        this.options.logger.info({ transferId }, 'deferred transfer writes stored');
      }
    } catch {
      return; // still down: the next tick tries again
    }
    if (this.timer && this.stubs.size === 0 && this.transferWrites.size === 0) {
      clearInterval(this.timer);
      this.timer = null;
      this.options.onStoreHealth(true, 'deferred writes stored');
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
