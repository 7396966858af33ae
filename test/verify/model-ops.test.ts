import { join } from 'node:path';
import { coreOpsOf, modelOps, readCoreOps } from '../../src/verify/model-ops.js';

const ROOT = join(__dirname, '..', '..', '..', 'shared', 'onnx-node-tests');

describe('modelOps', () => {
  it('lists the ops of a model file', () => {
    expect(modelOps(join(ROOT, 'test_add', 'model.onnx'))).toEqual([{ domain: '', op: 'Add' }]);
  });

  it('includes ops inside If subgraphs', () => {
    const ops = modelOps(join(ROOT, 'test_if', 'model.onnx')).map((o) => o.op);
    expect(ops).toEqual(expect.arrayContaining(['If', 'Constant']));
  });

  it('throws a UserError for a file that is not a model', () => {
    expect(() => modelOps(join(ROOT, 'CORE_OPS.txt'))).toThrow(/CORE_OPS\.txt: cannot read ONNX model/);
  });
});

describe('coreOpsOf', () => {
  const core = readCoreOps(join(ROOT, 'CORE_OPS.txt'));
  it('reads the 122 core ops', () => {
    expect(core.size).toBe(122);
    expect(core.has('LayerNormalization')).toBe(true);
  });
  it('classifies tests by their ops', () => {
    expect(coreOpsOf(join(ROOT, 'test_add', 'model.onnx'), core)).toEqual({ ops: ['Add'], nonCore: [], core: true });
    const r = coreOpsOf(join(ROOT, 'test_if', 'model.onnx'), core);
    expect(r.core).toBe(false);
    expect(r.nonCore).toContain('If');
    // without a set, the suite's CORE_OPS.txt is used
    expect(coreOpsOf(join(ROOT, 'test_if', 'model.onnx')).core).toBe(false);
    expect(coreOpsOf(join(ROOT, 'test_gemm_default_scalar_bias', 'model.onnx')).core).toBe(true);
  });
});
