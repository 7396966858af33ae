/** Runs the BUILT command line (`node bin/shardc.js`), as scripts and pipelines do. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const PACKAGE_ROOT = join(__dirname, '..', '..');
export const NODE_TESTS = join(PACKAGE_ROOT, '..', 'shared', 'onnx-node-tests');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function requireBuild(): void {
  if (!existsSync(join(PACKAGE_ROOT, 'dist', 'cli-bundle', 'main.js')))
    throw new Error('dist/cli-bundle/main.js is missing: run `npm run build` first (`npm test` does)');
}

export function shardc(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'bin', 'shardc.js'), ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A user error: exit 1 and exactly one `shardc: ...` line on stderr, no stack trace. */
export function expectUserError(r: CliResult, pattern: RegExp): void {
  expect(r.code).toBe(1);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^shardc: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}
