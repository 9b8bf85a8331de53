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
  if (typeof target === 'string') return writesOncePerTick(new Redis(target, settings));
  // Sentinel: ioredis asks the sentinels for the master and follows a failover by itself.
  return writesOncePerTick(new Redis({
    ...settings,
    name: target.sentinel.name,
    sentinels: target.sentinel.nodes.map((node) => {
      const at = node.lastIndexOf(':');
      return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
    }),
  }));
}

/**
 * Commands sent in one pass of the job queue leave in one write. A chunk of replies from Redis resumes
 * several transfers at once, and each sent its next command (a save, a stream append) in a system call
 * of its own: on these VMs about a tenth of the service's CPU. Each connection's socket is corked at the
 * first write and uncorked once the current callback and its microtasks are done (process.nextTick),
 * so no command waits for a later turn of the event loop. (ioredis' own auto-pipelining does this per
 * turn, with a Pipeline object per batch, and was measured worse: see `enableAutoPipelining` above.)
 */
function writesOncePerTick(redis: Redis): Redis {
  redis.on('connect', () => {
    const socket = redis.stream;
    const write = socket.write;
    let corked = false;
    socket.write = function (this: typeof socket, ...args: Parameters<typeof write>) {
      if (!corked) {
        corked = true;
        socket.cork();
        process.nextTick(() => {
          corked = false;
          socket.uncork();
        });
      }
      return write.apply(this, args);
    } as typeof write;
  });
  return redis;
}
