// How `npm start` runs the service: the arguments after `node` in package.json's start script (the
// young-generation size included), so tests and benchmarks start the service exactly as it runs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');

export function startArguments(): string[] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const [node, ...args] = pkg.scripts.start.trim().split(/\s+/);
  if (node !== 'node') throw new Error(`package.json's start script does not run node: ${pkg.scripts.start}`);
  return args;
}

/** The node options of the start script, without the entry point: what a benchmark's process runs with. */
export function serviceNodeOptions(): string[] {
  return startArguments().slice(0, -1);
}
