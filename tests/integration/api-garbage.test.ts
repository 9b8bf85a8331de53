// No request can crash the process: bounded random and hostile input gets a 4xx in the one error shape.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, startHarness, transferBody, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h.close());

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTILE = ['', ' ', '\u0000', '{}', '}', ',', '^^:', "'", '"', '\n', '\r\nVia: x', '𠀀', '警'.repeat(300), -1, 1e308, true, null, [], {}];

function mutate(value: unknown, next: () => number): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const key of Object.keys(copy)) {
      const roll = next();
      if (roll < 0.08) delete copy[key];
      else if (roll < 0.2) copy[key] = HOSTILE[Math.floor(next() * HOSTILE.length)];
      else copy[key] = mutate(copy[key], next);
    }
    if (next() < 0.05) copy[`x${Math.floor(next() * 100)}`] = 1;
    return copy;
  }
  return value;
}

describe('hostile input', () => {
  it('500 mutated transfer requests each get a 202 or a 4xx with an error code, and the service still answers', async () => {
    const next = random(20261123);
    const statuses = new Map<number, number>();
    for (let i = 0; i < 500; i += 1) {
      const res = await h.app.inject({ method: 'POST', url: '/v1/transfers', headers: auth('agent'), payload: mutate(transferBody(), next) as object });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (res.statusCode !== 202) {
        expect(res.statusCode, res.body).toBeGreaterThanOrEqual(400);
        expect(res.statusCode, res.body).toBeLessThan(500);
        expect(typeof res.json().error.code).toBe('string');
      }
    }
    expect(statuses.get(400)).toBeGreaterThan(100);
    expect((await h.app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
  });

  it.each([
    ['GET', '/v1/tickets/%00'],
    ['GET', '/v1/tickets/' + 'a'.repeat(5000)],
    ['GET', '/v1/transfers/..%2f..%2fetc'],
    ['DELETE', '/v1/transfers/%ZZ'],
    ['PUT', '/v1/transfers'],
    ['GET', '/nowhere'],
  ])('%s request %# is a 4xx in the error shape', async (method, url) => {
    const res = await h.app.inject({ method: method as 'GET', url, headers: auth('supervisor') });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expect(typeof res.json().error.code).toBe('string');
  });
});
