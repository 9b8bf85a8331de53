import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { loadRoutingList, RoutingListError } from '../../src/policy/linkage-policy.js';

const configDir = join(import.meta.dirname, '../../config');
const defaultsPath = join(configDir, 'default.json');

describe('the policy settings and the routing lists shipped in config/', () => {
  it('the defaults name the Guilin list, and both shipped lists validate against the default desks', () => {
    const config = loadConfig({ defaultsPath, env: {} });
    expect(config.policy.routingList).toBe('routing/guilin.json');
    expect(config.records.postgresUrl).toBeNull();
    for (const file of ['routing/guilin.json', 'routing/urumqi.json']) {
      const list = loadRoutingList(join(configDir, file), Object.keys(config.desks));
      expect(list.categories.length).toBeGreaterThan(10);
    }
  });

  it('takes DATABASE_URL, ROUTING_LIST and NUISANCE_HASH_KEY from the environment', () => {
    const config = loadConfig({
      defaultsPath,
      env: { DATABASE_URL: 'postgres://u@db:5432/calls', ROUTING_LIST: 'routing/urumqi.json', NUISANCE_HASH_KEY: 'k'.repeat(32) },
    });
    expect(config.records.postgresUrl).toBe('postgres://u@db:5432/calls');
    expect(config.policy.routingList).toBe('routing/urumqi.json');
    expect(config.policy.nuisance).toMatchObject({ hashKey: 'k'.repeat(32), repeatThreshold: 5 });
  });

  it('refuses the sample nuisance hash key in production', () => {
    const problems = (() => {
      try {
        loadConfig({ defaultsPath, env: { NODE_ENV: 'production', API_KEYS: 'agent:a:0123456789abcdef0123' } });
      } catch (err) {
        if (err instanceof ConfigError) return err.problems;
      }
      return [];
    })();
    expect(problems).toEqual([expect.stringMatching(/^policy\.nuisance\.hashKey: the sample key is refused in production/)]);
  });

  it('a broken list stops start-up with the file, the path in it and the reason', () => {
    const raw = JSON.parse(readFileSync(join(configDir, 'routing/guilin.json'), 'utf8')) as { categories: { route: unknown; subcategories: { code: string }[] }[] };
    raw.categories[3]!.route = { kind: 'desk', desk: '911' };
    raw.categories[7]!.subcategories[0]!.code = '9.99';
    const dir = mkdtempSync(join(tmpdir(), 'hl-list-'));
    const file = join(dir, 'list.json');
    writeFileSync(file, JSON.stringify(raw));
    const config = loadConfig({ defaultsPath, env: {} });
    let error: unknown;
    try {
      loadRoutingList(file, Object.keys(config.desks));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(RoutingListError);
    expect((error as RoutingListError).problems).toEqual([
      "categories.7.subcategories.0.code: a sub-category code starts with its category's code and a dot (2.02.)",
    ]);
    raw.categories[7]!.subcategories[0]!.code = '2.02.01';
    writeFileSync(file, JSON.stringify(raw));
    expect(() => loadRoutingList(file, Object.keys(config.desks))).toThrow(/categories\.3\.route\.desk: desk 911 is not configured in desks/);
    rmSync(dir, { recursive: true, force: true });
  });
});
