// Runs every benchmark in scripts/bench-*.ts, one after another, each in its own process so one
// section's heap and sockets do not colour the next one's figures.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { serviceNodeOptions } from '../tests/support/service-command.js';

const here = import.meta.dirname;
const only = process.argv[2];
const sections = readdirSync(here)
  .filter((f) => /^bench-.+\.ts$/.test(f) && f !== 'bench-report.ts')
  .filter((f) => only === undefined || f.includes(only))
  .sort();

let failed = 0;
for (const file of sections) {
  // With the node options `npm start` gives the service (its young-generation size), since the
  // service runs inside the benchmark's process.
  const run = spawnSync(process.execPath, [...serviceNodeOptions(), join(here, file)], { stdio: 'inherit', timeout: 180_000 });
  if (run.status !== 0) {
    failed += 1;
    console.error(`${file} failed (exit ${run.status ?? run.signal})`);
  }
  console.log('');
}
process.exit(failed === 0 ? 0 : 1);
