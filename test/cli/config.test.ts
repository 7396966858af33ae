/**
 * shardc.config.json (src/cli/config.ts): settings per command equivalent to the flags, found in
 * the working directory or given by --config; flags override it; unknown keys are user errors
 * naming the key. Also --quiet (the bundle path and hash only).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { PACKAGE_ROOT } from './run-cli.js';

const GPT = join(PACKAGE_ROOT, 'examples', 'gpt-tiny.onnx');
let tmp: string;
beforeAll(() => (tmp = mkdtempSync(join(tmpdir(), 'shardc-config-'))));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(cwd: string, ...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { packageRoot: PACKAGE_ROOT, cwd, stdout: { write: (s) => void (stdout += s) }, stderr: { write: (s) => void (stderr += s) } } as Parameters<typeof main>[1]);
  return { code, stdout, stderr };
}

function project(config: unknown): string {
  const dir = mkdtempSync(join(tmp, 'p-'));
  writeFileSync(join(dir, 'shardc.config.json'), JSON.stringify(config));
  return dir;
}

test('partition takes mesh, strategy, dims, out and json from ./shardc.config.json', async () => {
  const dir = project({ partition: { mesh: 'tp=2', strategy: 'megatron', dim: { batch: 1, sequence: 4 }, json: true } });
  const out = join(dir, 'b');
  const r = await cli(dir, 'partition', GPT, '--out', out);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ bundle: out, devices: 2, collectives: 6 });
});

test('flags override the file; --config names another file', async () => {
  const dir = project({ partition: { mesh: 'tp=2', strategy: 'megatron', dim: 'batch=1,sequence=4', json: true } });
  const other = join(dir, 'ci.json');
  writeFileSync(other, JSON.stringify({ partition: { mesh: 'tp=4', strategy: 'megatron', dim: { batch: 1, sequence: 4 }, json: true } }));
  const a = await cli(dir, 'partition', GPT, '--mesh', 'tp=4', '--out', join(dir, 'a'));
  expect(a.stderr).toBe('');
  expect(JSON.parse(a.stdout)).toMatchObject({ devices: 4 });
  const b = await cli(dir, '--config', other, 'partition', GPT, '--out', join(dir, 'b'));
  expect(b.code).toBe(0);
  expect(JSON.parse(b.stdout)).toMatchObject({ devices: 4 });
});

test('values go through the flag parsers: a bad --dim in the file is a user error naming the key', async () => {
  const dir = project({ verify: { dim: 'batch=zero' } });
  const r = await cli(dir, 'verify', GPT);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^shardc: .*config file: verify\.dim: --dim expects name=value pairs/);
});

test.each([
  [{ partiton: { mesh: 'tp=2' } }, /unknown command "partiton"/],
  [{ partition: { meshes: 'tp=2' } }, /unknown flag "partition\.meshes" \(partition takes: mesh, strategy, /],
  [{ partition: { json: 'yes' } }, /partition\.json must be true or false/],
  [{ partition: { mesh: ['tp=2'] } }, /partition\.mesh must be a string or a number/],
  [[1, 2], /the top level must be an object/],
])('bad config %j: exit 1 naming the key', async (config, pattern) => {
  const dir = project(config);
  const r = await cli(dir, 'partition', GPT, '--out', join(dir, 'x'));
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).toContain('shardc.config.json');
});

test('--config that does not exist, and invalid JSON', async () => {
  const r = await cli(tmp, '--config', join(tmp, 'missing.json'), 'inspect', GPT);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/missing\.json.*config file not found|config file not found.*missing\.json/);
  const dir = mkdtempSync(join(tmp, 'bad-'));
  writeFileSync(join(dir, 'shardc.config.json'), '{ "inspect": ');
  expect((await cli(dir, 'inspect', GPT)).stderr).toMatch(/config file is not valid JSON/);
});

test('--quiet prints the bundle path and hash only; --quiet --verbose is a user error', async () => {
  const out = join(tmp, 'quiet');
  const r = await cli(tmp, '--quiet', 'partition', GPT, '--mesh', 'tp=2', '--strategy', 'megatron', '--dim', 'batch=1,sequence=4', '--out', out);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`^${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} [0-9a-f]{64}\n$`));
  const v = await cli(tmp, '--quiet', '--verbose', 'partition', GPT, '--mesh', 'tp=2', '--out', join(tmp, 'qv'));
  expect(v.code).toBe(1);
  expect(v.stderr).toMatch(/--quiet and --verbose exclude each other/);
});
