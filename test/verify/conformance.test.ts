import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { readTensorFile, writeTensorFile } from '../../src/onnx/tensor-file.js';
import { runConformance, runNodeTest } from '../../src/verify/conformance.js';

const ROOT = join(__dirname, '..', '..', '..', 'shared', 'onnx-node-tests');
const registry = createCoreRegistry();
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-conf-'));
  // A small suite: a correct test, a copy with a wrong expected value, a corrupt model.
  cpSync(join(ROOT, 'test_add'), join(tmp, 'test_add'), { recursive: true });
  cpSync(join(ROOT, 'test_add'), join(tmp, 'test_add_wrong'), { recursive: true });
  const out = join(tmp, 'test_add_wrong', 'test_data_set_0', 'output_0.pb');
  const exp = readTensorFile(out);
  const v = exp.tensor.toArray();
  v[59] = v[59]! * 1.01 + 0.01; // last element [2,3,4], outside rtol 1e-3
  writeTensorFile(out, Tensor.from('float32', exp.tensor.shape, v), exp.name);
  cpSync(join(ROOT, 'test_add'), join(tmp, 'test_corrupt'), { recursive: true });
  writeFileSync(join(tmp, 'test_corrupt', 'model.onnx'), Buffer.from([0x0a, 0xff, 0xff]));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('runNodeTest', () => {
  it('passes a test whose outputs match', () => {
    expect(runNodeTest(join(ROOT, 'test_add'), registry)).toEqual({ name: 'test_add', status: 'pass', message: '' });
  });

  it('fails naming the output and the worst element', () => {
    const r = runNodeTest(join(tmp, 'test_add_wrong'), registry);
    expect(r.status).toBe('fail');
    expect(r.message).toMatch(/^test_data_set_0: output 0 \(sum\): 1 of 60 elements differ; worst at \[2,3,4\]: got /);
  });

  it('calls tests with ops outside the registry unsupported, naming the ops', () => {
    expect(runNodeTest(join(ROOT, 'test_adam'), registry)).toEqual({
      name: 'test_adam',
      status: 'unsupported',
      message: 'unsupported ops: ai.onnx.preview.training.Adam',
    });
  });

  it('calls tests with sequence or optional values unsupported', () => {
    const r = runNodeTest(join(ROOT, 'test_identity_sequence'), registry);
    expect(r.status).toBe('unsupported');
    expect(r.message).toMatch(/x: sequence/);
  });

  it('counts an unreadable model as a failure, never a pass', () => {
    const r = runNodeTest(join(tmp, 'test_corrupt'), registry);
    expect(r.status).toBe('fail');
    expect(r.message).toMatch(/model\.onnx/);
  });
});

describe('runConformance', () => {
  it('runs every test, sorted by name, with totals', () => {
    const r = runConformance(tmp, { registry });
    expect(r.tests.map((t) => [t.name, t.status])).toEqual([
      ['test_add', 'pass'],
      ['test_add_wrong', 'fail'],
      ['test_corrupt', 'fail'],
    ]);
    expect([r.passed, r.failed, r.unsupported]).toEqual([1, 2, 0]);
  });

  it('filters by name', () => {
    expect(runConformance(tmp, { registry, filter: /wrong/ }).tests.map((t) => t.name)).toEqual(['test_add_wrong']);
  });
});
