// The operator's sipp scenarios (sip/sipp) played against each other on loopback, with no drachtio in
// between: proves they parse and that each UAC/UAS pair completes a real SIP exchange. The agent phone's
// REFER scenario and the busy 110 run against test-only scenarios (tests/fixtures/sipp) playing the
// edge's side.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/redis-server.js';

const SIPP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'sip', 'sipp');
const hasSipp = spawnSync('sipp', ['-v'], { stdio: 'ignore' }).error === undefined;
const work = mkdtempSync(join(tmpdir(), 'sipp-')); // sipp writes its *_errors.log files in its cwd
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; killed: boolean }> {
  return new Promise((resolve) => {
    const child = spawn('sipp', [...args, '-nostdin'], { cwd: work, stdio: 'ignore' });
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, killed });
    });
  });
}

const TEST_SIPP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'sipp');

async function pair(uac: string, uas: string, service: string, uacDir = SIPP_DIR): Promise<void> {
  const uasPort = await freePort();
  const uacPort = await freePort();
  const server = run(['-sf', join(SIPP_DIR, uas), '-i', '127.0.0.1', '-p', String(uasPort), '-m', '1'], 15_000);
  await new Promise((r) => setTimeout(r, 300));
  const client = await run(
    ['-sf', join(uacDir, uac), '-s', service, `127.0.0.1:${uasPort}`, '-i', '127.0.0.1', '-p', String(uacPort), '-m', '1', '-timeout', '10s', '-timeout_error'],
    15_000,
  );
  const done = await server;
  expect(client).toEqual({ code: 0, killed: false });
  expect(done).toEqual({ code: 0, killed: false });
}

describe.skipIf(!hasSipp)('sipp scenarios for the operator', () => {
  it('the citizen via the 12345 PBX completes a call with the 110 switch scenario', () => pair('uac_citizen_via_12345.xml', 'uas_110.xml', '110'));
  it('the 110 switch direction completes a call with an answering scenario', () => pair('uac_citizen_via_110.xml', 'uas_110.xml', '12345'));
  it('the citizen cancels while the 110 scenario rings', () => pair('uac_citizen_cancel.xml', 'uas_110_ringing.xml', '110'));
  it('the 110 agent phone REFERs and checks 202 and the NOTIFYs (100, 180, final 200 terminated) as the edge sends them', () =>
    pair('edge_as_referee.xml', 'uas_110_agent_refer.xml', '110', TEST_SIPP_DIR));
  it('119 answers a call (as the referred desk)', () => pair('uac_citizen_via_12345.xml', 'uas_119.xml', '119'));
  it('a busy 110 answers 486 and takes the ACK', () => pair('caller_expects_busy.xml', 'uas_110_busy.xml', '110', TEST_SIPP_DIR));
});
