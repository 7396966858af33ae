/**
 * `npm run examples`: runs every examples/api/*.ts (not lib/) as its own Node process (tsx), from
 * the package root, one after another; prints ok/FAIL per example with its time, the output of
 * any that failed, and exits 1 if one failed. `--only NAME` runs the examples whose file name
 * contains NAME.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(process.argv[1] ? join(process.argv[1], '..', '..') : process.cwd());
const dir = join(root, 'examples', 'api');
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && (only === undefined || f.includes(only)))
  .sort();

let failed = 0;
for (const f of files) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, f)], { cwd: root, encoding: 'utf8', timeout: 300_000 });
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  if (r.status === 0) console.log(`ok   ${f} (${s} s)`);
  else {
    failed++;
    console.log(`FAIL ${f} (exit ${r.status ?? r.signal}, ${s} s)`);
    process.stdout.write((r.stdout + r.stderr).replace(/^/gm, '     | '));
  }
}
console.log(`${files.length - failed} of ${files.length} examples passed`);
process.exitCode = failed ? 1 : 0;
