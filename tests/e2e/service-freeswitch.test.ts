// The service as a process (npm start) driving a FreeSWITCH test peer over the Event Socket, configured
// through FREESWITCH_INSTANCES: readiness follows the switch connection, and a key press becomes a
// bridged call on the switch.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EslPeer } from '../support/esl-peer.js';
import { freePort } from '../support/redis-server.js';

const root = join(import.meta.dirname, '../..');
const children: ChildProcess[] = [];
const peers: EslPeer[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const peer of peers.splice(0)) await peer.close();
});

function startService(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', () => undefined);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, out: () => stdout };
}

async function readiness(port: number): Promise<{ status: number; switches: { switchId: string; state: string; detail?: string }[] } | null> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/health/ready`);
    const body = (await response.json()) as { switches: { switchId: string; state: string; detail?: string }[] };
    return { status: response.status, switches: body.switches };
  } catch {
    return null;
  }
}

describe('the service process with a FreeSWITCH instance configured', () => {
  it('is ready once the Event Socket is up, and a transfer request ends bridged on the switch', async () => {
    const peer = await EslPeer.start();
    peers.push(peer);
    const port = await freePort();
    const service = startService({
      PORT: String(port),
      FREESWITCH_INSTANCES: JSON.stringify([{ switchId: 'fs-12345', desk: '12345', port: peer.port, password: 'ClueCon' }]),
    });
    await expect
      .poll(() => readiness(port), { timeout: 15_000 })
      .toMatchObject({ status: 200, switches: [{ switchId: 'fs-12345', state: 'connected' }] });

    const citizen = randomUUID();
    const agent = randomUUID();
    peer.citizenWithAgent(citizen, agent);
    const response = await fetch(`http://127.0.0.1:${port}/v1/transfers`, {
      method: 'POST',
      headers: { authorization: 'Bearer dev-agent-key-change-me', 'content-type': 'application/json' },
      body: JSON.stringify({
        citizenLeg: { switchId: 'fs-12345', legId: citizen },
        agent: { agentId: 'A1001', seatId: 'S07', legId: agent },
        from: '12345',
        to: '110',
        priority: 'emergency',
        callerNumber: '13800138000',
        ticket: { ticketId: 'GD-2026-000777', kind: 'work-order', categoryCode: '0301', divisionCode: '450300', summary: '有人持刀争吵', urgency: 'urgent' },
      }),
    });
    expect(response.status).toBe(202);
    await expect.poll(() => peer.channels.get(citizen)?.bridgedTo ?? null, { timeout: 10_000 }).not.toBeNull();
    expect(peer.commandsLike('bgapi originate')[0]).toContain('sofia/gateway/sw110/110 &park');
    await expect.poll(() => peer.commandsLike(`api uuid_kill ${agent}`).length).toBe(1);

    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    expect(service.out()).not.toContain('13800138000');
    // The driver said goodbye on the socket.
    expect(peer.commands.at(-1)?.text).toBe('exit');
  });

  it('with a wrong Event Socket password, readiness says auth-failed and the switch is not hammered', async () => {
    const peer = await EslPeer.start();
    peers.push(peer);
    const port = await freePort();
    startService({
      PORT: String(port),
      FREESWITCH_INSTANCES: JSON.stringify([{ switchId: 'fs-12345', desk: '12345', port: peer.port, password: 'WrongPassword', reconnectInitialMs: 20 }]),
    });
    await expect
      .poll(() => readiness(port), { timeout: 15_000 })
      .toMatchObject({ status: 503, switches: [{ switchId: 'fs-12345', state: 'auth-failed', detail: expect.stringContaining('-ERR invalid') }] });
    await new Promise((r) => setTimeout(r, 300));
    expect(peer.accepted).toBe(1);
  });
});
