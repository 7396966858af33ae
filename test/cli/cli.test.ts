import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor } from '../../src/ir/tensor.js';
import { readTensorFile, writeTensorFile } from '../../src/onnx/tensor-file.js';
import { compareTensors } from '../../src/verify/compare.js';
import { NODE_TESTS, expectUserError, requireBuild, shardc } from './run-cli.js';

const ADD = join(NODE_TESTS, 'test_add');
const ADD_MODEL = join(ADD, 'model.onnx');
let tmp: string;

beforeAll(() => {
  requireBuild();
  tmp = mkdtempSync(join(tmpdir(), 'shardc-cli-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('shardc conformance', () => {
  it('--json prints exactly the report document', () => {
    const r = shardc('conformance', NODE_TESTS, '--json', '--filter', '^test_(add|adagrad)$');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc)).toEqual(['tests', 'passed', 'failed', 'unsupported']);
    expect(doc.tests).toEqual([
      { name: 'test_adagrad', status: 'unsupported', message: 'unsupported ops: ai.onnx.preview.training.Adagrad' },
      { name: 'test_add', status: 'pass', message: '' },
    ]);
    expect([doc.passed, doc.failed, doc.unsupported]).toEqual([1, 0, 1]);
  });

  it('prints one line per test and the totals without --json', () => {
    const r = shardc('conformance', NODE_TESTS, '--filter', '^test_add$');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('pass test_add\n1 tests: 1 pass, 0 fail, 0 unsupported\n');
  });

  it('rejects a directory that does not exist and targets not implemented yet', () => {
    expectUserError(shardc('conformance', join(tmp, 'nope')), /not a directory of ONNX backend tests/);
    expectUserError(shardc('conformance', NODE_TESTS, '--target', 'cuda'), /target cuda is not implemented yet/);
    expectUserError(shardc('conformance', NODE_TESTS, '--target', 'tpu'), /unknown target "tpu"/);
  });
});

describe('shardc inspect', () => {
  it('--json describes inputs, outputs, ops and parameters', () => {
    const r = shardc('inspect', ADD_MODEL, '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.inputs).toEqual([
      { name: 'x', dtype: 'float32', shape: [3, 4, 5] },
      { name: 'y', dtype: 'float32', shape: [3, 4, 5] },
    ]);
    expect(s.outputs).toEqual([{ name: 'sum', dtype: 'float32', shape: [3, 4, 5] }]);
    expect(s.ops).toEqual([{ op: 'Add', count: 1 }]);
    expect(s.parameters).toEqual({ count: 0, bytes: 0, tensors: 0 });
    expect(s.unsupported).toEqual([]);
  });

  it('names unsupported ops', () => {
    const r = shardc('inspect', join(NODE_TESTS, 'test_adagrad', 'model.onnx'));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/unsupported: 1 op\n {2}Adagrad: 1 node/);
  });
});

describe('shardc verify', () => {
  it('compares with onnxruntime-node on seeded random inputs when no test data is given', () => {
    const r = shardc('verify', ADD_MODEL, '--json');
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.reference).toBe('onnxruntime');
    expect(rep.ok).toBe(true);
    expect(rep.outputs).toEqual([expect.objectContaining({ name: 'sum', ok: true, dtype: 'float32', shape: [3, 4, 5] })]);
    // float32 addition is exact in both runtimes
    expect(rep.outputs[0].maxAbsDiff).toBe(0);
  });

  it('compares with output_<i>.pb of a test data set', () => {
    const r = shardc('verify', ADD_MODEL, '--inputs', join(ADD, 'test_data_set_0'));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/cpu vs test data/);
    expect(r.stdout).toMatch(/ok sum float32\[3,4,5\]/);
  });

  it('exits 3 and names the worst element when an expected output is wrong', () => {
    const dir = join(tmp, 'wrong');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    for (const f of ['input_0.pb', 'input_1.pb']) copyFileSync(join(ADD, 'test_data_set_0', f), join(dir, f));
    const exp = readTensorFile(join(ADD, 'test_data_set_0', 'output_0.pb'));
    const vals = exp.tensor.toArray();
    vals[7] = vals[7]! + 1; // flat 7 = [0,1,2]
    writeTensorFile(join(dir, 'output_0.pb'), Tensor.from('float32', exp.tensor.shape, vals), exp.name);
    const r = shardc('verify', ADD_MODEL, '--inputs', dir);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^shardc: verification failed: output "sum" .*1 of 60 elements differ; worst at \[0,1,2\]: got /);
    expect(r.stdout).toMatch(/MISMATCH sum/);

    const j = shardc('verify', ADD_MODEL, '--inputs', dir, '--json');
    expect(j.code).toBe(3);
    const rep = JSON.parse(j.stdout);
    expect(rep.ok).toBe(false);
    expect(rep.reference).toBe('test-data');
    expect(rep.outputs[0]).toMatchObject({ name: 'sum', ok: false, mismatches: 1, worst: { index: [0, 1, 2] } });
  });

  it('rejects bad tolerances and unknown options as user errors', () => {
    expectUserError(shardc('verify', ADD_MODEL, '--atol', 'abc'), /--atol expects a non-negative number/);
    expectUserError(shardc('verify', ADD_MODEL, '--bogus'), /unknown option '--bogus'/);
    expectUserError(shardc('verify', ADD_MODEL, '--dim', 'batch'), /--dim expects name=value pairs/);
  });
});

describe('shardc run', () => {
  it('writes output_<i>.pb equal to the test data', () => {
    const out = join(tmp, 'run-out');
    const r = shardc('run', ADD_MODEL, '--inputs', join(ADD, 'test_data_set_0'), '--outputs', out);
    expect(r.code).toBe(0);
    const got = readTensorFile(join(out, 'output_0.pb'));
    const want = readTensorFile(join(ADD, 'test_data_set_0', 'output_0.pb'));
    expect(got.name).toBe('sum');
    expect(compareTensors(got.tensor, want.tensor, { rtol: 0, atol: 0 }).ok).toBe(true);
  });

  it('prints outputs without --outputs', () => {
    const r = shardc('run', ADD_MODEL, '--inputs', join(ADD, 'test_data_set_0'));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^output_0 sum: float32\[3,4,5\] = \[/);
  });
});

describe('bad input and exit codes', () => {
  it('an empty model file is a user error: exit 1, one line, no stack trace', () => {
    const empty = join(tmp, 'empty.onnx');
    writeFileSync(empty, '');
    expectUserError(shardc('inspect', empty), /empty\.onnx/);
    expectUserError(shardc('verify', empty), /empty\.onnx/);
  });

  it('a missing model file is a user error', () => {
    expectUserError(shardc('run', join(tmp, 'missing.onnx'), '--inputs', tmp), /missing/);
  });

  it('an unknown command is a usage error (exit 1)', () => {
    expectUserError(shardc('frobnicate'), /unknown command 'frobnicate'/);
  });

  it('--help and --version exit 0', () => {
    const h = shardc('--help');
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/conformance/);
    const v = shardc('--version');
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe('shardc demo', () => {
  it('runs the example model and matches onnxruntime-node', () => {
    const r = shardc('demo');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ok: the CPU runtime matches onnxruntime-node/);
  });
});
