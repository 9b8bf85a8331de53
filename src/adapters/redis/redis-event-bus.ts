import type { Redis } from 'ioredis';
import type { BusEvent, EventBus } from '../../ports.js';

/**
 * Superseded by RedisStreamEventBus (the live feed needs one shared order and a replayable history);
 * main.ts no longer wires this one. Kept until the branches that may still name it are merged.
 *
 * Carries bus events to every service instance over Redis pub/sub. Subscribing needs a connection of
 * its own. Pub/sub is fire-and-forget: an instance that is disconnected misses events, and the feed
 * resynchronises from the stores when it reconnects.
 */
export class RedisEventBus implements EventBus {
  private readonly listeners = new Set<(event: BusEvent) => void>();

  constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    private readonly channel: string,
  ) {
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      let event: BusEvent;
      try {
        event = JSON.parse(message) as BusEvent;
      } catch {
        return; // not ours: another writer on the channel
      }
      for (const listener of this.listeners) listener(event);
    });
    // With the offline queue off, SUBSCRIBE must wait for the connection; subscribing again on every
    // reconnect is harmless (Redis keeps one subscription per channel).
    const subscribe = () => void subscriber.subscribe(channel).catch(() => undefined);
    if (subscriber.status === 'ready') subscribe();
    subscriber.on('ready', subscribe);
  }

  async publish(event: BusEvent): Promise<void> {
    await this.publisher.publish(this.channel, JSON.stringify(event));
  }

  subscribe(listener: (event: BusEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.subscriber.quit().catch(() => undefined);
  }
}
