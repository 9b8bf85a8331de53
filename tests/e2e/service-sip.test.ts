// The service as a process (npm start) with the SIP edge configured through SIP_EDGE, against the
// drachtio test peer: readiness follows the drachtio link, and a trunk INVITE from the 12345 PBX becomes
// a transfer in the service's records whose stub a seat can read.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DrachtioPeer } from '../support/drachtio-peer.js';
import { freePort } from '../support/redis-server.js';

const root = join(import.meta.dirname, '../..');
const children: ChildProcess[] = [];
const peers: DrachtioPeer[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const peer of peers.splice(0)) await peer.stop();
});

function sipEdge(drachtioPort: number) {
  return {
    drachtio: { host: '127.0.0.1', port: drachtioPort, secret: 'cymru', pingIntervalMs: 5000, retryMaxDelayMs: 200 },
    domain: 'hotline.example',
    peers: [{ name: 'pbx12345', desk: '12345', addresses: ['127.0.0.1'], trusted: true, divisionCode: '450300', categoryCode: 'C01' }],
    desks: {
      '12345': { numbers: ['12345'], trunks: [{ name: 'to-12345', host: '127.0.0.1', port: 5080 }] },
      '110': { numbers: ['110'], trunks: [{ name: '110-main', host: '127.0.0.1', port: 5090 }] },
    },
  };
}

describe('the service process with the SIP edge configured', () => {
  it('is ready once drachtio is connected, and a trunk INVITE to 110 becomes a transfer whose stub a seat reads', async () => {
    const peer = await new DrachtioPeer().start();
    peers.push(peer);
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', PORT: String(port), SIP_EDGE: JSON.stringify(sipEdge(peer.port)) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    const ready = async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
        return { status: res.status, switches: ((await res.json()) as { switches: unknown[] }).switches };
      } catch {
        return null;
      }
    };
    await expect.poll(ready, { timeout: 15_000 }).toMatchObject({ status: 200, switches: [{ switchId: 'sip-edge', state: 'connected' }] });

    const call = peer.citizenInvite();
    expect(await call.final()).toBe(200);
    const invite = peer.sentByApp({ method: 'INVITE', port: 5090 })[0] ?? '';
    const ticketId = /^X-Ticket-Id: (.*)\r$/im.exec(invite)?.[1] ?? '';
    expect(ticketId).toMatch(/^SIP-/);

    const stub = await fetch(`http://127.0.0.1:${port}/v1/tickets/${ticketId}`, { headers: { authorization: 'Bearer dev-seat-key-change-me' } });
    expect(stub.status).toBe(200);
    expect(await stub.json()).toMatchObject({ ticketId, sourceDesk: '12345', callerNumber: '13800138000' });

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toContain('"msg":"transfer transition"');
    expect(stdout).not.toContain('13800138000');
  });
});
