/**
 * `npm run examples` as part of `npm test` (what CI runs): scripts/run-examples.ts runs every
 * examples/api/*.ts in its own Node process and exits 1 if one fails. Here it must exit 0 and
 * report every example file as `ok`, so a broken example fails the suite, not only the separate
 * command. (test/examples/api-examples.test.ts checks what some examples print.)
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

test('npm run examples: every examples/api/*.ts runs and exits 0', () => {
  const examples = readdirSync(join(ROOT, 'examples', 'api'))
    .filter((f) => f.endsWith('.ts'))
    .sort();
  expect(examples).toEqual(expect.arrayContaining(['custom-op.ts', 'custom-pass.ts', 'hardware.ts', 'pipeline-ci.ts', 'run-bundle.ts', 'browser.ts']));
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'run-examples.ts')], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  const report = `${r.stdout}${r.stderr}`;
  expect({ status: r.status, report }).toEqual({ status: 0, report: expect.stringContaining(`${examples.length} of ${examples.length} examples passed`) });
  for (const f of examples) expect(report).toMatch(new RegExp(`^ok   ${f.replace('.', '\\.')} \\(`, 'm'));
}, 120_000);
