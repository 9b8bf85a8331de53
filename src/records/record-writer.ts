// Writes call records from the transfer service's own events. It taps the bus the service publishes
// on (not the shared Redis channel), so each transfer is written once, by the instance driving it.
// Writes are queued in order and retried; a write that still fails is logged and counted, never
// allowed to stall a live call.
import type { Logger } from 'pino';
import type { BusEvent, EventBus } from '../ports.js';
import type { CallRecordStore } from './call-record.js';

/** Writes waiting at most; past it new ones are dropped (and counted) rather than exhaust memory. */
const PENDING_CAP = 10_000;

export class RecordWriter {
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;
  private dropListener: (count: number) => void = () => undefined;

  constructor(
    private readonly records: CallRecordStore,
    private readonly logger: Logger,
    private readonly retry = { attempts: 3, delayMs: 200 },
  ) {}

  /** Told each time a record write is given up. */
  onDrop(listener: (count: number) => void): void {
    this.dropListener = listener;
  }

  observe(event: BusEvent): void {
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
          if (attempt >= this.retry.attempts) {
            this.dropListener(1);
            this.logger.error({ transferId: transfer.id, version: record.version, err: err instanceof Error ? err.message : String(err) }, 'call record write dropped');
            break;
          }
          await new Promise((r) => setTimeout(r, this.retry.delayMs * attempt));
        }
      }
      this.pending -= 1;
    });
  }

  /** Resolves when every queued write is done. */
  async flush(): Promise<void> {
    while (this.pending > 0) await this.queue;
  }
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
