import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FreeswitchConfigSchema, FreeswitchInstancesSchema, createEslCallControls } from '../../../src/adapters/freeswitch/config.js';
import { ConfigError, loadConfig } from '../../../src/config.js';
import { memoryLogger } from '../../support/memory-logger.js';

const defaultsPath = join(import.meta.dirname, '../../../config/default.json');

describe('FreeSWITCH instance configuration', () => {
  it('fills the defaults: loopback, 8021, P-Asserted-Identity, the default conference profile', () => {
    expect(FreeswitchConfigSchema.parse({ switchId: 'fs-a', desk: '12345', password: 'ClueCon' })).toMatchObject({
      host: '127.0.0.1',
      port: 8021,
      callerIdHeader: 'pid',
      conferenceProfile: 'default',
      commandTimeoutMs: 5000,
      reconnectInitialMs: 250,
      reconnectMaxMs: 10000,
    });
  });

  it.each([
    [{ switchId: 'fs a', desk: '12345', password: 'x' }, 'switchId'],
    [{ switchId: 'fs-a', desk: '12345', password: 'Clue Con' }, 'password'],
    [{ switchId: 'fs-a', desk: '12345', password: 'x\nexit' }, 'password'],
    [{ switchId: 'fs-a', desk: '12345', password: 'x', callerIdHeader: 'pai' }, 'callerIdHeader'],
    [{ switchId: 'fs-a', desk: '12345', password: 'x', port: 70000 }, 'port'],
    [{ switchId: 'fs-a', desk: '12345', password: 'x', host: 'evil host' }, 'host'],
    [{ switchId: 'fs-a', desk: '12345', password: 'x', extra: 1 }, ''],
  ])('refuses %j at %s', (input, path) => {
    const result = FreeswitchConfigSchema.safeParse(input);
    expect(result.success).toBe(false);
    if (path) expect(result.error?.issues.map((i) => i.path.join('.'))).toContain(path);
  });

  it('refuses two instances with one switchId', () => {
    const one = { switchId: 'fs-a', desk: '12345', password: 'x' };
    expect(FreeswitchInstancesSchema.safeParse([one, one]).success).toBe(false);
  });

  it('builds one driver per instance, not yet connected', async () => {
    const configs = FreeswitchInstancesSchema.parse([
      { switchId: 'fs-12345-a', desk: '12345', password: 'x' },
      { switchId: 'fs-110-a', desk: '110', password: 'y', port: 8022 },
    ]);
    const drivers = createEslCallControls(configs, { logger: memoryLogger().logger });
    expect(drivers.map((d) => d.status())).toEqual([
      { switchId: 'fs-12345-a', kind: 'freeswitch', desk: '12345', state: 'disconnected', detail: 'not started' },
      { switchId: 'fs-110-a', kind: 'freeswitch', desk: '110', state: 'disconnected', detail: 'not started' },
    ]);
    await Promise.all(drivers.map((d) => d.close()));
  });

  it('a driver built by hand still refuses a password that would break the auth line', () => {
    const [config] = FreeswitchInstancesSchema.parse([{ switchId: 'fs-a', desk: '12345', password: 'x' }]);
    expect(() => createEslCallControls([{ ...config!, password: 'Clue\n\napi uuid_kill' }], { logger: memoryLogger().logger })).toThrow(
      /one word/,
    );
  });

  it('is read from FREESWITCH_INSTANCES by loadConfig, and a bad entry names its path', () => {
    const config = loadConfig({
      defaultsPath,
      env: { FREESWITCH_INSTANCES: JSON.stringify([{ switchId: 'fs-a', desk: '12345', password: 'secret' }]) },
    });
    expect(config.freeswitch).toHaveLength(1);
    expect(config.freeswitch[0]).toMatchObject({ switchId: 'fs-a', port: 8021 });
    expect(loadConfig({ defaultsPath, env: {} }).freeswitch).toEqual([]);
    let problems: readonly string[] = [];
    try {
      loadConfig({ defaultsPath, env: { FREESWITCH_INSTANCES: JSON.stringify([{ switchId: 'fs-a', desk: '12345', password: '' }]) } });
    } catch (err) {
      if (err instanceof ConfigError) problems = err.problems;
    }
    expect(problems.join('\n')).toMatch(/^freeswitch\.0\.password: /m);
    expect(() => loadConfig({ defaultsPath, env: { FREESWITCH_INSTANCES: '[{' } })).toThrow(/FREESWITCH_INSTANCES: not valid JSON/);
  });
});
