// The service as a process, started the way `npm start` starts it.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, startRedis, startSentinel } from '../support/redis-server.js';
import { startArguments } from '../support/service-command.js';

const root = join(import.meta.dirname, '../..');
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

function startService(env: Record<string, string>) {
  const child = spawn(process.execPath, startArguments(), {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

async function waitForHttp(url: string, timeoutMs = 15_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fetch(url);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('the service process', () => {
  it('runs on the embedded default with no Redis, is live, and says why it is not ready', async () => {
    const port = await freePort();
    startService({ PORT: String(port) });
    const live = await waitForHttp(`http://127.0.0.1:${port}/health/live`);
    expect(live.status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`);
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as { checks: { name: string; healthy: boolean; detail: string }[]; switches: unknown[] };
    expect(body.checks).toEqual([
      { name: 'store', healthy: true, detail: expect.stringContaining('in-memory') },
      { name: 'call-records', healthy: true, detail: expect.stringContaining('in memory') },
    ]);
    expect(body.switches).toEqual([]);
  });

  it('stops at boot on a bad setting, naming it, without a stack trace', async () => {
    const service = startService({ PORT: 'eighty', REDIS_URL: 'localhost' });
    expect(await service.exited).toBe(78);
    expect(service.err()).toContain('http.port:');
    expect(service.err()).toContain('redis.url: a redis:// or rediss:// URL');
    expect(service.err()).not.toMatch(/\n\s+at /);
  });

  it('exits cleanly on SIGTERM', async () => {
    const port = await freePort();
    const service = startService({ PORT: String(port) });
    await waitForHttp(`http://127.0.0.1:${port}/health/live`);
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    expect(service.out()).toContain('"msg":"stopped"');
  });

  it('finds its Redis through Sentinel when REDIS_SENTINELS is set', async () => {
    const redis = await startRedis();
    const sentinel = await startSentinel(redis.port);
    try {
      const port = await freePort();
      startService({ PORT: String(port), REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`, REDIS_SENTINEL_NAME: 'mymaster' });
      await waitForHttp(`http://127.0.0.1:${port}/health/live`);
      await expect
        .poll(async () => ((await (await fetch(`http://127.0.0.1:${port}/health/ready`)).json()) as { checks: unknown[] }).checks)
        .toEqual([
          { name: 'store', healthy: true, detail: 'redis' },
          { name: 'call-records', healthy: true, detail: expect.stringContaining('in memory') },
        ]);
    } finally {
      await sentinel.stop();
      await redis.stop();
    }
  });

  it('serves /metrics to a supervisor key only, counting the clients on the live feed', async () => {
    const port = await freePort();
    startService({ PORT: String(port) });
    await waitForHttp(`http://127.0.0.1:${port}/health/live`);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(401);
    const scrape = async () =>
      (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: 'Bearer dev-supervisor-key-change-me' } })).text();
    expect(await scrape()).toMatch(/^linkage_feed_clients 0$/m);
    const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/feed`, ['hotline-feed.v1', 'bearer.dev-supervisor-key-change-me']);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = reject;
    });
    try {
      expect(await scrape()).toMatch(/^linkage_feed_clients 1$/m);
    } finally {
      socket.close();
    }
  });
});
