import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

const defaultsPath = join(import.meta.dirname, '../../config/default.json');

function problemsOf(env: NodeJS.ProcessEnv): readonly string[] {
  try {
    loadConfig({ defaultsPath, env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

/** The folders configFile made, removed when the file's tests are done. */
const configFolders: string[] = [];
afterAll(() => {
  for (const folder of configFolders) rmSync(folder, { recursive: true, force: true });
});

function configFile(content: string): string {
  const folder = mkdtempSync(join(tmpdir(), 'hl-config-'));
  configFolders.push(folder);
  const path = join(folder, 'config.json');
  writeFileSync(path, content);
  return path;
}

describe('loadConfig', () => {
  it('runs on the defaults alone, on the embedded store', () => {
    const config = loadConfig({ defaultsPath, env: {} });
    expect(config.http.port).toBe(8080);
    expect(config.redis.url).toBeNull();
    expect(Object.isFrozen(config.desks)).toBe(true);
  });

  it('takes HOST, PORT, REDIS_URL and LOG_LEVEL from the environment', () => {
    const config = loadConfig({
      defaultsPath,
      env: { HOST: '0.0.0.0', PORT: '9090', REDIS_URL: 'redis://127.0.0.1:6390', LOG_LEVEL: 'warn' },
    });
    expect(config.http).toMatchObject({ host: '0.0.0.0', port: 9090 });
    expect(config.redis.url).toBe('redis://127.0.0.1:6390');
    expect(config.logLevel).toBe('warn');
  });

  it('replaces the keys with API_KEYS', () => {
    const config = loadConfig({ defaultsPath, env: { API_KEYS: 'agent:toolbar:0123456789abcdef,seat:wall:fedcba9876543210' } });
    expect(config.auth.keys).toEqual([
      { role: 'agent', name: 'toolbar', key: '0123456789abcdef' },
      { role: 'seat', name: 'wall', key: 'fedcba9876543210' },
    ]);
    expect(config.auth.developmentKeys).toBe(false);
  });

  it.each([
    [{ PORT: 'eighty' }, 'http.port'],
    [{ PORT: '70000' }, 'http.port'],
    [{ REDIS_URL: 'localhost:6379' }, 'redis.url'],
    [{ LOG_LEVEL: 'loud' }, 'logLevel'],
    [{ API_KEYS: 'agent:toolbar:short' }, 'auth.keys.0.key'],
    [{ API_KEYS: 'boss:toolbar:0123456789abcdef' }, 'auth.keys.0.role'],
  ])('names the setting at fault for %j', (env, path) => {
    const problems = problemsOf(env);
    expect(problems.some((p) => p.startsWith(`${path}:`)), problems.join('; ')).toBe(true);
  });

  it('names a desk whose trunks are missing in CONFIG_FILE', () => {
    const path = configFile(JSON.stringify({ desks: { '110': { name: '110', number: '110', trunks: [] } } }));
    expect(problemsOf({ CONFIG_FILE: path })).toEqual([expect.stringMatching(/^desks\.110\.trunks:/)]);
  });

  it('names an unknown setting rather than ignoring it', () => {
    const path = configFile(JSON.stringify({ http: { prot: 8081 } }));
    expect(problemsOf({ CONFIG_FILE: path })[0]).toMatch(/^http:.*prot/);
  });

  it('says when CONFIG_FILE is not JSON or cannot be read', () => {
    expect(problemsOf({ CONFIG_FILE: configFile('{ nope') })[0]).toMatch(/not valid JSON/);
    expect(problemsOf({ CONFIG_FILE: '/nonexistent/config.json' })[0]).toMatch(/cannot be read \(ENOENT\)/);
  });

  it('refuses the development keys in production', () => {
    expect(problemsOf({ NODE_ENV: 'production' })[0]).toMatch(/^auth\.keys: the development keys are refused/);
  });
});
