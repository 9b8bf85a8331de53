// Starts a real PostgreSQL for a test file: initdb into a temporary directory, then postgres on a free
// loopback port, trust auth, fsync off (test data need not survive a crash). PostgreSQL refuses to run
// as root, so as root the server runs as the "postgres" system user (created by the Debian package)
// through runuser. Binaries: PG_BIN, else the newest /usr/lib/postgresql/<v>/bin, else PATH.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './redis-server.js';

export interface PostgresServer {
  readonly url: string;
  stop(): Promise<void>;
}

function binDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  return ''; // rely on PATH
}

/** As root: the postgres user's uid/gid, to own the data directory and run the server. */
function unprivilegedUser(): { name: string; uid: number; gid: number } | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const name = process.env.PG_TEST_USER ?? 'postgres';
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return { name, uid, gid };
  } catch {
    throw new Error(
      `running as root and there is no "${name}" user to run PostgreSQL as: install the postgresql package (it creates one) or set PG_TEST_USER`,
    );
  }
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = binDir();
  const exe = (name: string) => (bin ? join(bin, name) : name);
  const user = unprivilegedUser();
  const dir = mkdtempSync(join(tmpdir(), 'hl-pg-'));
  const data = join(dir, 'data');
  if (user) chownSync(dir, user.uid, user.gid);
  const asUser = (cmd: string, args: string[]): [string, string[]] => (user ? ['runuser', ['-u', user.name, '--', cmd, ...args]] : [cmd, args]);

  try {
    const [cmd, args] = asUser(exe('initdb'), ['-D', data, '-U', 'test', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
    execFileSync(cmd, args, { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const detail = (err as { stderr?: Buffer }).stderr?.toString() ?? String(err);
    throw new Error(`initdb failed (is PostgreSQL installed? apt-get install -y postgresql): ${detail}`, { cause: err });
  }

  const port = await freePort();
  const [cmd, args] = asUser(exe('postgres'), [
    '-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off',
    '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
  ]);
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const url = `postgres://test@127.0.0.1:${port}/postgres`;

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgres exited (${child.exitCode}): ${stderr}`);
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      break;
    } catch {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) throw new Error(`postgres did not accept connections within 15 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // A test run that dies without calling stop() must not leave a server behind.
  const onExit = () => {
    signal(postmasterPid(data), 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  return {
    url,
    async stop() {
      process.off('exit', onExit);
      if (child.exitCode === null) {
        // Signal postgres itself (runuser may not pass signals on): SIGINT is its fast shutdown.
        const pid = postmasterPid(data);
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          signal(pid ?? child.pid, 'SIGINT');
          setTimeout(() => {
            signal(pid, 'SIGKILL');
            child.kill('SIGKILL');
          }, 5000).unref();
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postmasterPid(data: string): number | null {
  try {
    const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function signal(pid: number | null | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
