import { Redis, type RedisOptions } from 'ioredis';

/**
 * ioredis by default queues commands while offline and retries each for a long time, so a dead Redis
 * would stall a transfer for seconds. Here a command fails fast instead; the transfer service decides
 * what a failure means (refuse a normal transfer, carry on with an emergency one).
 */
export type RedisTarget = string | { readonly sentinel: { readonly name: string; readonly nodes: readonly string[] } };

export function connectRedis(target: RedisTarget, options: { commandTimeoutMs: number; connectTimeoutMs: number }): Redis {
  const settings: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: options.connectTimeoutMs,
    // Keep trying to reconnect forever, but never slower than once a second.
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    lazyConnect: false,
    // Off: auto-pipelining builds a Pipeline (with a copy of every defined script) per tick, and V8
    // pretenures parts of it, so each young collection copied ~10 MB of dead commands. Measured with
    // `npm run bench -- transfers`: p99 ~30 ms with it, 10-15 ms without (and the patch in patches/).
    enableAutoPipelining: false,
  };
  if (typeof target === 'string') return new Redis(target, settings);
  // Sentinel: ioredis asks the sentinels for the master and follows a failover by itself.
  return new Redis({
    ...settings,
    name: target.sentinel.name,
    sentinels: target.sentinel.nodes.map((node) => {
      const at = node.lastIndexOf(':');
      return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
    }),
  });
}
