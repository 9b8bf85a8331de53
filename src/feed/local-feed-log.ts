import type { BusEvent, EventBus, FeedLog, SequencedEvent } from '../ports.js';

/**
 * The feed log of a single instance (the in-memory stores): numbers the bus events as they arrive and
 * keeps the last `capacity` for clients that reconnect. The seq carries a per-process epoch, so a seq
 * from before a restart is told apart and answered with a resync.
 */
export class LocalFeedLog implements FeedLog {
  private readonly listeners = new Set<(event: SequencedEvent) => void>();
  private readonly kept: SequencedEvent[] = [];
  private counter = 0;
  private readonly epoch = Date.now().toString(36);
  private readonly unsubscribe: () => void;

  constructor(
    bus: EventBus,
    private readonly capacity: number,
  ) {
    this.unsubscribe = bus.subscribe((event) => this.append(event));
  }

  follow(listener: (event: SequencedEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async head(): Promise<string | null> {
    return this.kept.at(-1)?.seq ?? null;
  }

  async since(seq: string, upTo: string, limit: number): Promise<SequencedEvent[] | null> {
    const from = this.kept.findIndex((e) => e.seq === seq);
    if (from < 0) return null;
    const to = this.kept.findIndex((e) => e.seq === upTo);
    if (to < from) return null;
    const missed = this.kept.slice(from + 1, to + 1);
    return missed.length > limit ? null : missed;
  }

  close(): void {
    this.unsubscribe();
    this.listeners.clear();
  }

  private append(event: BusEvent): void {
    this.counter += 1;
    const sequenced = { seq: `${this.epoch}-${this.counter}`, event };
    this.kept.push(sequenced);
    if (this.kept.length > this.capacity) this.kept.shift();
    for (const listener of this.listeners) listener(sequenced);
  }
}
