/** Runs the shardc command line in-process (main() with captured output), for bundle CLI tests. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';

export const PACKAGE_ROOT = join(__dirname, '..', '..');
export const GPT_TINY = join(PACKAGE_ROOT, 'examples', 'gpt-tiny.onnx');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function cli(...argv: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    packageRoot: PACKAGE_ROOT,
    stdout: { write: (s) => void (stdout += s) },
    stderr: { write: (s) => void (stderr += s) },
  });
  return { code, stdout, stderr };
}

/** Exit 1 with exactly one `shardc: ...` line matching `pattern`, nothing on stdout. */
export function expectUserError(r: CliRun, pattern: RegExp): void {
  expect(r.stdout).toBe('');
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^shardc: /);
  expect(r.stderr).toMatch(pattern);
  expect(r.code).toBe(1);
}

export function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]))
    .sort();
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** path → SHA-256 of every file under dir. */
export function digestTree(dir: string): Record<string, string> {
  return Object.fromEntries(listFiles(dir).map((f) => [f, sha256(readFileSync(join(dir, f)))]));
}
