// Writes call records from the transfer service's own events. It taps the bus the service publishes
// on (not the shared Redis channel), so each transfer is written once, by the instance driving it.
// Writes are queued in order and never allowed to stall a live call. While the records store is
// unreachable (an outage, a restart) a write is retried until it goes through, so an outage loses
// nothing; the queue is bounded, and a write the store refuses outright is given up after a few tries.
import type { Logger } from 'pino';
import type { BusEvent, EventBus, ObservedEvent } from '../ports.js';
import type { CallRecordStore } from './call-record.js';

/** Writes waiting at most; past it new ones are dropped (and counted) rather than exhaust memory. */
const PENDING_CAP = 10_000;

export interface RecordWriterRetry {
  /** The first pause after a failure; it doubles up to maxDelayMs. */
  readonly delayMs: number;
  readonly maxDelayMs: number;
  /** Tries of a write the store refuses (bad data, a constraint): it will not succeed later. */
  readonly refusedAttempts: number;
}

export class RecordWriter {
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;
  private closing = false;
  private wakeRetry: (() => void) | null = null;
  private dropListener: (count: number) => void = () => undefined;

  constructor(
    private readonly records: CallRecordStore,
    private readonly logger: Logger,
    private readonly retry: RecordWriterRetry = { delayMs: 200, maxDelayMs: 5_000, refusedAttempts: 3 },
  ) {}

  /** Told each time a record write is given up. */
  onDrop(listener: (count: number) => void): void {
    this.dropListener = listener;
  }

  /** Writes queued and not yet stored (they wait out a store outage here). */
  get pendingCount(): number {
    return this.pending;
  }

  observe(event: ObservedEvent): void {
    if (event.kind !== 'transfer') return;
    const { transfer, record } = event;
    if (this.pending >= PENDING_CAP) {
      this.dropListener(1);
      this.logger.error({ transferId: transfer.id, version: record.version }, 'call record write dropped: too many waiting');
      return;
    }
    this.pending += 1;
    this.queue = this.queue.then(async () => {
      for (let attempt = 1; ; attempt += 1) {
        try {
          await this.records.recordTransition(transfer, record);
          break;
        } catch (err) {
          const unreachable = isUnreachable(err);
          if (this.closing || (!unreachable && attempt >= this.retry.refusedAttempts)) {
            this.dropListener(1);
            this.logger.error(
              { transferId: transfer.id, version: record.version, err: errorText(err), closing: this.closing },
              'call record write dropped',
            );
            break;
          }
          if (attempt === 1 && unreachable) {
            this.logger.warn({ transferId: transfer.id, err: errorText(err) }, 'call records unreachable: holding writes until they are back');
          }
          await this.pause(Math.min(this.retry.delayMs * 2 ** (attempt - 1), this.retry.maxDelayMs));
        }
      }
      this.pending -= 1;
    });
  }

  /** Resolves when every queued write is stored or given up. */
  async flush(): Promise<void> {
    while (this.pending > 0) await this.queue;
  }

  /**
   * Waits up to deadlineMs for queued writes (the store may be coming back), then gives the rest up
   * (logged and counted) rather than hold a shutdown forever.
   */
  async close(deadlineMs: number): Promise<void> {
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, deadlineMs).unref());
    await Promise.race([this.flush(), deadline]);
    this.closing = true;
    this.wakeRetry?.();
    await this.flush();
  }

  /** A pause between tries that close() can cut short. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeRetry = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeRetry = done;
    });
  }
}

/**
 * Whether a records store error means "not reachable now" (retry until it is) rather than "refused"
 * (this write will never succeed). PostgreSQL says which by SQLSTATE class: 08 connection, 40
 * serialization or deadlock, 53 insufficient resources, 57 operator intervention (shutdown, restart),
 * 58 system error. An error without an SQLSTATE is the network's or the pool's (refused, reset, timed out).
 */
export function isUnreachable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  // Node's errno codes (EPIPE, ECONNRESET…) are the network's; no SQLSTATE class starts with E.
  const sqlState = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('E');
  if (!sqlState) return true;
  return ['08', '40', '53', '57', '58'].includes(code.slice(0, 2));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Wraps a bus so every event this instance publishes is also seen by local observers, first. */
export function tapBus(bus: EventBus, observe: (event: BusEvent) => void): EventBus {
  return {
    async publish(event) {
      observe(event);
      await bus.publish(event);
    },
    subscribe: (listener) => bus.subscribe(listener),
    close: () => bus.close(),
  };
}
