// The service both service benchmarks measure: as main.ts composes it (routing policy with its
// nuisance lookup, call records in memory, leases, the live feed), on the given Redis with the default
// configuration, info-level logs to a sink that drops them, and the given switches. Not yet listening.
import { Writable } from 'node:stream';
import type { CallControl } from '../src/ports.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { compose, DEFAULTS_PATH, type Composition } from '../src/main.js';
import { freePort } from '../tests/support/redis-server.js';

export async function composedService(
  redisUrl: string,
  switches: readonly CallControl[],
): Promise<{ composed: Composition; port: number; agentKey: string; supervisorKey: string }> {
  const config = loadConfig({ defaultsPath: DEFAULTS_PATH, env: { REDIS_URL: redisUrl, PORT: String(await freePort()) } });
  const agent = config.auth.keys.find((k) => k.role === 'agent');
  const supervisor = config.auth.keys.find((k) => k.role === 'supervisor');
  if (!agent || !supervisor) throw new Error('the configuration has no agent or supervisor key');
  const dropLogs = new Writable({ write: (_chunk, _encoding, done) => done() });
  const composed = await compose(config, createLogger(config.logLevel, dropLogs), { switches });
  return { composed, port: config.http.port, agentKey: agent.key, supervisorKey: supervisor.key };
}
