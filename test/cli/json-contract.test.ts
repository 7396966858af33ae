/**
 * The command-line contract for pipelines (DESIGN.md "Command line"): with --json every command
 * prints exactly one JSON document on stdout, and the exit codes are 0 done, 1 user error (stdout
 * empty, one `shardc:` line on stderr), 3 verification mismatch. Runs main() in-process on the
 * example gpt-tiny (bench's --json document is checked in bench.test.ts; here its user error).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { Tensor } from '../../src/ir/tensor.js';
import { writeTensorFile } from '../../src/onnx/tensor-file.js';
import { NODE_TESTS, PACKAGE_ROOT } from './run-cli.js';

const GPT = join(PACKAGE_ROOT, 'examples', 'gpt-tiny.onnx');
const DIM = ['--dim', 'batch=1,sequence=4'];

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { packageRoot: PACKAGE_ROOT, stdout: { write: (s) => void (stdout += s) }, stderr: { write: (s) => void (stderr += s) } });
  return { code, stdout, stderr };
}

/** One JSON document on stdout and nothing else. */
function doc(r: { stdout: string }): Record<string, unknown> {
  const v = JSON.parse(r.stdout) as unknown;
  expect(typeof v).toBe('object');
  return v as Record<string, unknown>;
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-json-'));
  mkdirSync(join(tmp, 'inputs'));
  writeTensorFile(join(tmp, 'inputs', 'input_0.pb'), Tensor.from('int64', [1, 4], [5, 17, 3, 90]), 'input_ids');
  // A test data set whose expected output is wrong: verify must exit 3.
  mkdirSync(join(tmp, 'wrong'));
  writeTensorFile(join(tmp, 'wrong', 'input_0.pb'), Tensor.from('int64', [1, 4], [5, 17, 3, 90]), 'input_ids');
  writeTensorFile(join(tmp, 'wrong', 'output_0.pb'), Tensor.zeros('float32', [1, 4, 96]), 'logits');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('--json: one document on stdout, exit 0', () => {
  const bundle = (): string => join(tmp, 'bundle');

  test('inspect', async () => {
    const r = await cli('inspect', GPT, '--json', ...DIM);
    expect(r.code).toBe(0);
    expect(doc(r)).toMatchObject({ nodes: expect.any(Number), unsupported: [] });
  });

  test('partition (bundle path and manifest SHA-256), then explain and run on it', async () => {
    const p = await cli('partition', GPT, '--mesh', 'tp=2', '--strategy', 'megatron', ...DIM, '--out', bundle(), '--json');
    expect(p.stderr).toBe('');
    expect(p.code).toBe(0);
    const d = doc(p);
    expect(d.bundle).toBe(bundle());
    expect(d.manifestSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(d).toMatchObject({ devices: 2, collectives: 6 });

    const e = await cli('explain', bundle(), '--json');
    expect(e.code).toBe(0);
    expect(JSON.stringify(doc(e))).toContain('AllReduce');

    const r = await cli('run', bundle(), '--inputs', join(tmp, 'inputs'), '--json');
    expect(r.code).toBe(0);
    const out = doc(r) as { outputs: { name: string; dtype: string; shape: number[]; values: number[] }[]; outputsDir: null };
    expect(out.outputs.map((o) => [o.name, o.dtype, o.shape])).toEqual([['logits', 'float32', [1, 4, 96]]]);
    expect(out.outputs[0]!.values).toHaveLength(8);
    expect(out.outputsDir).toBeNull();
    // The model itself gives the same logits (the bundle is the sharded model).
    const m = await cli('run', GPT, '--inputs', join(tmp, 'inputs'), '--json');
    const want = (doc(m) as typeof out).outputs[0]!.values;
    out.outputs[0]!.values.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 4));
  });

  test('verify (against onnxruntime-node) and a mismatch: exit 3 with the JSON report still on stdout', async () => {
    const ok = await cli('verify', GPT, ...DIM, '--json');
    expect(ok.code).toBe(0);
    expect(doc(ok)).toMatchObject({ ok: true });
    const bad = await cli('verify', GPT, '--inputs', join(tmp, 'wrong'), '--json');
    expect(bad.code).toBe(3);
    expect(doc(bad)).toMatchObject({ ok: false });
    expect(bad.stderr).toMatch(/^shardc: verification failed: output "logits"/);
  });

  test('conformance', async () => {
    const r = await cli('conformance', NODE_TESTS, '--filter', '^test_abs$', '--json');
    expect(r.code).toBe(0);
    expect(doc(r)).toEqual({ tests: [{ name: 'test_abs', status: 'pass', message: '' }], passed: 1, failed: 0, unsupported: 0 });
  });

  test('demo', async () => {
    const r = await cli('demo', '--json');
    expect(r.code).toBe(0);
    expect(doc(r)).toMatchObject({ model: join('examples', 'gpt-tiny.onnx'), dims: { batch: 2, sequence: 8 }, verify: { ok: true } });
  });
});

describe('user errors with --json: exit 1, nothing on stdout, one line on stderr', () => {
  test.each([
    ['inspect', [join('no', 'such.onnx'), '--json']],
    ['partition', [GPT, '--mesh', 'tp=2', '--strategy', 'nope', '--out', join('no', 'out'), '--json']],
    ['run', [GPT, '--inputs', join('no', 'inputs'), '--json']],
    ['verify', [GPT, '--mesh', 'tp=0', '--json']],
    ['explain', [join('no', 'bundle'), '--json']],
    ['conformance', [join('no', 'tests'), '--json']],
    ['bench', [join('no', 'such.onnx'), '--json']],
  ])('%s', async (cmd, args) => {
    const r = await cli(cmd, ...(args as string[]));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^shardc: /);
  });
});
