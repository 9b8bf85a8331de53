// A burst of transfer-key presses while Redis restarts, as a softphone makes them: each press is retried
// with its Idempotency-Key until the service accepts it.
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import type { TransferRequestInput } from '../../src/transfer/transfer-request.js';
import type { RedisServer } from './redis-server.js';

export interface Press {
  readonly body: TransferRequestInput;
  readonly key: string;
}

/** Retries one press until it is accepted; meanwhile every answer must be 503 store_unavailable. */
export async function pressUntilAccepted(
  app: FastifyInstance,
  agentHeaders: Record<string, string>,
  { body, key }: Press,
): Promise<{ id: string; attempts: number }> {
  for (let attempt = 1; attempt <= 100; attempt += 1) {
    const res = await app.inject({ method: 'POST', url: '/v1/transfers', headers: { ...agentHeaders, 'idempotency-key': key }, payload: body });
    if (res.statusCode === 202) return { id: res.json<{ transfer: { id: string } }>().transfer.id, attempts: attempt };
    expect(res.statusCode, res.body).toBe(503);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('store_unavailable');
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('never accepted');
}

/** Presses 5 ms apart; Redis restarts (300 ms down) at press `restartAt`. Resolves with every accepted press. */
export async function burstThroughRestart(
  app: FastifyInstance,
  agentHeaders: Record<string, string>,
  redis: RedisServer,
  presses: readonly Press[],
  restartAt: number,
): Promise<{ id: string; attempts: number }[]> {
  const results: Promise<{ id: string; attempts: number }>[] = [];
  for (const [i, press] of presses.entries()) {
    if (i === restartAt) void redis.restart(300);
    results.push(pressUntilAccepted(app, agentHeaders, press));
    await new Promise((r) => setTimeout(r, 5));
  }
  const accepted = await Promise.all(results);
  expect(accepted.some((a) => a.attempts > 1), 'the restart should have refused some presses').toBe(true);
  return accepted;
}
